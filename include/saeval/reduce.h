/* Rank-count-invariant summation of per-work-unit partial vectors.
 *
 * Floating-point addition is not associative, so MPI_SUM over doubles gives
 * results that depend on how work was spread. Instead every unit's partial
 * vector is a leaf of one fixed binary tree over unit indices 0..n-1
 * (node(L,i) covers units [i*2^L, (i+1)*2^L); a node whose right half is
 * empty equals its left child). A rank that owns the contiguous units
 * [first, last) computes the largest aligned subtrees inside its range with
 * a binary counter, keeping O(log n) vectors; rank 0 gathers those subtrees
 * and finishes the tree. Every addition happens in the same place of the
 * same tree for any rank count, so the sum is bitwise identical.
 *
 * Integer accumulators (counts, histograms) do not need this: they are
 * exact and go through MPI_SUM on int64. */
#ifndef SAEVAL_REDUCE_H
#define SAEVAL_REDUCE_H
#include <stddef.h>
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"

typedef struct sv_tree sv_tree;

/* len: doubles per partial; this rank owns units [first, last) of n_units. */
sv_tree *sv_tree_new(int64_t n_units, int64_t first, int64_t last, size_t len);
/* Zeroed buffer for the next unit's partial (units are pushed in order). */
double *sv_tree_leaf(sv_tree *t);
/* Add the filled leaf to the tree. */
sv_rc sv_tree_push(sv_tree *t);
/* Collective. On rank 0 writes the total (len doubles) to out; out may be
 * NULL elsewhere. All ranks must have pushed all their units. */
sv_rc sv_tree_reduce(sv_tree *t, MPI_Comm comm, double *out);
void sv_tree_free(sv_tree *t);

/* Contiguous split of n units over P ranks, balanced by weight (tokens):
 * unit u goes to the rank whose share contains the midpoint of u's
 * cumulative weight. Fills first[r], last[r]. Only affects speed. */
void sv_split_units(const int64_t *unit_weight, int64_t n, int P, int64_t *first, int64_t *last);

#endif
