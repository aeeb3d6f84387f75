/* sv_agree: one collective verdict on a return code. */
#include "saeval/agree.h"

#include <stdio.h>
#include <string.h>

sv_rc sv_agree(sv_rc rc, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    int mine[2] = {(int)rc, rc != SV_OK ? rank : P}, worst[2];
    MPI_Allreduce(&mine[0], &worst[0], 1, MPI_INT, MPI_MAX, comm);
    MPI_Allreduce(&mine[1], &worst[1], 1, MPI_INT, MPI_MIN, comm);
    if (worst[0] == SV_OK) return SV_OK;
    char msg[2048];
    if (rank == worst[1]) snprintf(msg, sizeof msg, "%s", sv_errmsg());
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, worst[1], comm);
    /* Later agreements on the same failure (the caller's checks) stay quiet. */
    static char last[2048];
    if (rank == 0 && strcmp(last, msg) != 0) {
        fprintf(stderr, "saeval: error: %s\n", msg);
        fflush(stderr);
        snprintf(last, sizeof last, "%s", msg);
    }
    sv_fail((sv_rc)worst[0], "%s", msg);
    return (sv_rc)worst[0];
}
