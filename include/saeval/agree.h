/* The collective verdict: every rank learns the worst return code. */
#ifndef SAEVAL_AGREE_H
#define SAEVAL_AGREE_H
#include <mpi.h>
#include "saeval/error.h"

/* Every rank learns whether any rank failed; rank 0 prints the first
 * failing rank's message. Returns the worst code. */
sv_rc sv_agree(sv_rc rc, MPI_Comm comm);

#endif
