/* Gram row-block scan, instantiated by geometry.c for REAL = float/double. */

/* Inverse norms of the rows of W (rows x d), or of the columns of a
 * d x rows matrix when transposed; 0 for a zero row. The transposed case
 * walks W row by row, 64 columns at a time (a column walk misses the cache
 * on every element); each column's sum still runs over i in order. */
static void FN(inv_norms)(const REAL *W, int64_t rows, int64_t d, int transposed, double *inv)
{
    if (transposed) {
        enum { JB = 64 };
        double ss[JB];
        for (int64_t j0 = 0; j0 < rows; j0 += JB) {
            const int64_t jn = rows - j0 < JB ? rows - j0 : JB;
            for (int64_t q = 0; q < jn; q++) ss[q] = 0;
            for (int64_t i = 0; i < d; i++)
                for (int64_t q = 0; q < jn; q++) {
                    double v = W[i * rows + j0 + q];
                    ss[q] += v * v;
                }
            for (int64_t q = 0; q < jn; q++) inv[j0 + q] = ss[q] > 0 ? 1.0 / sqrt(ss[q]) : 0.0;
        }
        return;
    }
    for (int64_t j = 0; j < rows; j++) {
        double ss = 0;
        for (int64_t i = 0; i < d; i++) {
            double v = W[j * d + i];
            ss += v * v;
        }
        inv[j] = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    }
}

/* U [n][d] = the unit rows j0 .. j0+n-1 of W (see inv_norms for the
 * layouts). Rows are normalized where they are used, so W is never copied
 * whole; every copy of a row has the same bits. */
SV_MULTIARCH static void FN(unit_rows)(const REAL *W, int64_t rows, int64_t d, int transposed, const double *inv, int64_t j0,
                          int64_t n, REAL *U)
{
    if (transposed) {
        /* 16 x 16 tiles through a local buffer: whole cache lines read
         * from W's rows and written to U's. */
        enum { TB = 16 };
        REAL t[TB][TB];
        for (int64_t i0 = 0; i0 < d; i0 += TB) {
            const int64_t in = d - i0 < TB ? d - i0 : TB;
            for (int64_t q0 = 0; q0 < n; q0 += TB) {
                const int64_t qn = n - q0 < TB ? n - q0 : TB;
                for (int64_t ii = 0; ii < in; ii++) {
                    const REAL *w = W + (i0 + ii) * rows + j0 + q0;
                    for (int64_t qq = 0; qq < qn; qq++) t[qq][ii] = (REAL)((double)w[qq] * inv[j0 + q0 + qq]);
                }
                for (int64_t qq = 0; qq < qn; qq++) memcpy(U + (q0 + qq) * d + i0, t[qq], (size_t)in * sizeof(REAL));
            }
        }
        return;
    }
    for (int64_t q = 0; q < n; q++) {
        const REAL *w = W + (j0 + q) * d;
        const double s = inv[j0 + q];
        for (int64_t i = 0; i < d; i++) U[q * d + i] = (REAL)(w[i] * s);
    }
}

/* Column maxima of one Gram row's segment: column l keeps the best (v, j)
 * (arg_better) whatever order the rows come in. Branch-free, so that the
 * clones vectorize it. */
SV_MULTIARCH static void FN(col_update)(const REAL *cr, int64_t n, int64_t j, double *cm, int64_t *ca)
{
    for (int64_t c = 0; c < n; c++) {
        const double v = cr[c];
        const int t = (v > cm[c]) | ((v == cm[c]) & (j < ca[c]));
        cm[c] = t ? v : cm[c];
        ca[c] = t ? j : ca[c];
    }
}

/* The row's own state over the segment (columns l0, l0 + 1, ...): its
 * maximum (the first on ties: l ascends), and with full the sums (added in
 * column order), the histogram, the counts over 0.9 and 0.99 and the top
 * pairs. */
static void FN(row_update)(const REAL *cr, int64_t n, int64_t j, int64_t l0, int full, sv_grow *g, sv_gacc *a)
{
    double mx = g->max;
    int64_t am = g->arg;
    if (!full) {
        for (int64_t c = 0; c < n; c++)
            if (cr[c] > mx) { mx = cr[c]; am = l0 + c; }
        g->max = mx;
        g->arg = am;
        return;
    }
    double sa = g->sum_abs, su = g->sum;
    int64_t o9 = 0, o99 = 0;
    for (int64_t c = 0; c < n; c++) {
        const double v = cr[c];
        if (v > mx) { mx = v; am = l0 + c; }
        sa += fabs(v);
        su += v;
        /* floor for x >= 0 is the truncation; below 0 (and NaN) it is bin 0 */
        const double x = (v + 1.0) * (SV_GEOM_BINS / 2.0);
        const int b = !(x >= 0) ? 0 : x >= SV_GEOM_BINS ? SV_GEOM_BINS - 1 : (int)x;
        a->hist[(l0 + c) & 3][b]++;
        o9 += v > 0.9;
        o99 += v > 0.99;
        if (a->n_top < SV_GEOM_TOP || v >= a->top[0].cos) top_offer(a, j, l0 + c, v);
    }
    a->over9 += o9;
    a->over99 += o99;
    g->max = mx;
    g->arg = am;
    g->sum_abs = sa;
    g->sum = su;
}

/* Row block [r0, r1) against latents [r0, m), SV_GRAM_PANEL columns per
 * GEMM call. The threads fill one panel each (its unit rows, then C = the
 * block's unit rows x the panel's), then share the block's rows to fold
 * every pair j < l of those panels into the accumulators. A row's state
 * (maximum, sums) is carried from panel to panel in column order, so it
 * sees its columns in the same order whatever the thread count. */
static void FN(scan_block)(const REAL *W, int64_t m, int64_t d, int transposed, const double *inv, int64_t r0,
                           int64_t r1, REAL *Ub, REAL **Up, REAL **Cp, int64_t panel, int full, sv_gacc *acc,
                           int nthreads, sv_grow *row)
{
    const int64_t nr = r1 - r0, nc = m - r0;
    const int64_t np = (nc + panel - 1) / panel;
    FN(unit_rows)(W, m, d, transposed, inv, r0, nr, Ub);
    for (int64_t i = 0; i < nr; i++) row[i] = (sv_grow){-INFINITY, m, 0, 0};
    for (int64_t p0 = 0; p0 < np; p0 += nthreads) {
        const int64_t pn = np - p0 < nthreads ? np - p0 : nthreads;
#pragma omp parallel for num_threads(nthreads) schedule(static, 1) if (pn > 1)
        for (int64_t q = 0; q < pn; q++) {
            const int64_t c0 = (p0 + q) * panel, w = nc - c0 < panel ? nc - c0 : panel;
            FN(unit_rows)(W, m, d, transposed, inv, r0 + c0, w, Up[q]);
            GEMM(1, nr, w, d, Ub, d, Up[q], d, Cp[q], panel);
        }
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 16)
        for (int64_t i = 0; i < nr; i++) {
            sv_gacc *a = &acc[omp_get_thread_num()];
            const int64_t j = r0 + i;
            /* Columns after the diagonal: the pairs j < l, l ascending. */
            for (int64_t q = 0; q < pn; q++) {
                const int64_t c0 = (p0 + q) * panel, w = nc - c0 < panel ? nc - c0 : panel;
                const int64_t cs = i + 1 > c0 ? i + 1 - c0 : 0, l0 = r0 + c0 + cs;
                if (cs >= w) continue;
                const REAL *cr = Cp[q] + i * panel + cs;
                FN(col_update)(cr, w - cs, j, a->colmax + l0, a->colarg + l0);
                FN(row_update)(cr, w - cs, j, l0, full, &row[i], a);
            }
        }
    }
}
