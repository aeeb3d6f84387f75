/* Gram row-block scan, instantiated by geometry.c for REAL = float/double. */

/* Unit-normalize the rows of W (rows x d, or the columns of a d x rows
 * matrix when transposed). A zero row stays zero. The transposed case
 * walks W row by row, 64 columns at a time (a column walk misses the cache
 * on every element); each column's sum still runs over i in order. */
static void FN(unit_rows)(const REAL *W, int64_t rows, int64_t d, int transposed, REAL *U)
{
    if (transposed) {
        enum { JB = 64 };
        double ss[JB], inv[JB];
        for (int64_t j0 = 0; j0 < rows; j0 += JB) {
            const int64_t jn = rows - j0 < JB ? rows - j0 : JB;
            for (int64_t q = 0; q < jn; q++) ss[q] = 0;
            for (int64_t i = 0; i < d; i++)
                for (int64_t q = 0; q < jn; q++) {
                    double v = W[i * rows + j0 + q];
                    ss[q] += v * v;
                }
            for (int64_t q = 0; q < jn; q++) inv[q] = ss[q] > 0 ? 1.0 / sqrt(ss[q]) : 0.0;
            for (int64_t i = 0; i < d; i++)
                for (int64_t q = 0; q < jn; q++) U[(j0 + q) * d + i] = (REAL)((double)W[i * rows + j0 + q] * inv[q]);
        }
        return;
    }
    for (int64_t j = 0; j < rows; j++) {
        double ss = 0;
        for (int64_t i = 0; i < d; i++) {
            double v = W[j * d + i];
            ss += v * v;
        }
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (int64_t i = 0; i < d; i++) U[j * d + i] = (REAL)(W[j * d + i] * inv);
    }
}

/* Row block [r0, r1) against latents [r0, m): C = U_rows U_cols^T in fixed
 * column panels, then fold every pair j < l into the accumulators. */
static void FN(scan_block)(const REAL *U, int64_t m, int64_t d, int64_t r0, int64_t r1, REAL *C,
                           int full, sv_gacc *acc, int nthreads, double *row_sum_abs, double *row_sum)
{
    const int64_t nr = r1 - r0, nc = m - r0;
    const int64_t np = (nc + SV_GRAM_PANEL - 1) / SV_GRAM_PANEL;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (np > 1)
    for (int64_t p = 0; p < np; p++) {
        int64_t c0 = p * SV_GRAM_PANEL, w = nc - c0 < SV_GRAM_PANEL ? nc - c0 : SV_GRAM_PANEL;
        GEMM(1, nr, w, d, U + r0 * d, d, U + (r0 + c0) * d, d, C + c0, nc);
    }
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 16)
    for (int64_t i = 0; i < nr; i++) {
        sv_gacc *a = &acc[omp_get_thread_num()];
        const int64_t j = r0 + i;
        const REAL *row = C + i * nc;
        double rmax = a->rowmax[j], sabs = 0, s = 0;
        int64_t rarg = a->rowarg[j];
        /* Columns after the diagonal: the pairs j < l. Row j is scanned
         * once, l ascending, so '>' keeps the lower l on ties; a column
         * hears from many rows (threads, ranks) and says so explicitly. */
        for (int64_t c = i + 1; c < nc; c++) {
            const double v = row[c];
            const int64_t l = r0 + c;
            if (v > rmax) { rmax = v; rarg = l; }
            if (arg_better(v, j, a->colmax[l], a->colarg[l])) { a->colmax[l] = v; a->colarg[l] = j; }
            if (!full) continue;
            sabs += fabs(v);
            s += v;
            int b = (int)floor((v + 1.0) * (SV_GEOM_BINS / 2.0));
            a->hist[b < 0 ? 0 : b >= SV_GEOM_BINS ? SV_GEOM_BINS - 1 : b]++;
            if (v > 0.9) a->over9++;
            if (v > 0.99) a->over99++;
            if (a->n_top < SV_GEOM_TOP || v >= a->top[0].cos) top_offer(a, j, l, v);
        }
        a->rowmax[j] = rmax;
        a->rowarg[j] = rarg;
        row_sum_abs[i] = sabs;
        row_sum[i] = s;
    }
}
