/* Pair claims (src/claim.c): exclusive creation, live holders left alone,
 * stale claims (dead pid on this host, expired lease, garbage) taken over,
 * release only by the holder, and one winner among racing takeovers. */
#define _DEFAULT_SOURCE
#define TEST_NAME "test_claim"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "saeval/claim.h"
#include "testutil.h"

static int failures = 0;
#define EXPECT(c, what) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); failures++; } } while (0)

static void put(const char *dir, const char *name, const char *text, time_t mtime)
{
    char p[8300];
    snprintf(p, sizeof p, "%s/%s.claim", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) die("cannot write", p);
    fputs(text, f);
    fclose(f);
    if (mtime) {
        struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
        utimensat(AT_FDCWD, p, ts, 0);
    }
}

static int exists(const char *dir, const char *name)
{
    char p[8300];
    snprintf(p, sizeof p, "%s/%s.claim", dir, name);
    return access(p, F_OK) == 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) die("usage: test_claim DIR", NULL);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/claims", argv[1]);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", argv[1]);
    if (system(cmd) != 0) die("cannot clean", argv[1]);
    mkdirs(argv[1]);

    sv_claim_owner me, other, holder;
    sv_claim_me(&me);
    sv_claim_state st;

    /* 1. A fresh claim is ours; claiming it again is idempotent. */
    EXPECT(sv_claim_try(dir, "a__d", &me, 0, &st, &holder) == SV_OK && st == SV_CLAIM_TAKEN, "fresh claim taken");
    EXPECT(sv_claim_try(dir, "a__d", &me, 0, &st, &holder) == SV_OK && st == SV_CLAIM_TAKEN, "re-claim by the holder");

    /* 2. A live run elsewhere (our parent: alive, same host) keeps its claim. */
    other = me;
    other.pid = (long)getppid();
    snprintf(other.token, sizeof other.token, "other-%ld", other.pid);
    snprintf(other.job, sizeof other.job, "4242_7");
    char line[600];
    snprintf(line, sizeof line, "saeval-claim %s %ld %s %ld %s\n", other.host, other.pid, other.job, other.started, other.token);
    put(dir, "b__d", line, 0);
    memset(&holder, 0, sizeof holder);
    EXPECT(sv_claim_try(dir, "b__d", &me, 0, &st, &holder) == SV_OK && st == SV_CLAIM_HELD_BY_OTHER, "live claim respected");
    EXPECT(holder.pid == other.pid && strcmp(holder.job, "4242_7") == 0, "holder described");
    EXPECT(strstr(sv_claim_describe(&holder), "SLURM job 4242_7") != NULL, "description names the job");
    /* Release by a non-holder leaves it. */
    sv_claim_release(dir, "b__d", &me);
    EXPECT(exists(dir, "b__d"), "release by a non-holder is a no-op");

    /* 3. Same host, dead pid: stale at once. */
    pid_t c = fork();
    if (c == 0) _exit(0);
    waitpid(c, NULL, 0);
    snprintf(line, sizeof line, "saeval-claim %s %ld - %ld dead-%ld\n", me.host, (long)c, me.started, (long)c);
    put(dir, "c__d", line, 0);
    EXPECT(sv_claim_try(dir, "c__d", &me, 0, &st, &holder) == SV_OK && st == SV_CLAIM_TAKEN, "dead owner's claim taken over");

    /* 4. Another host: live while refreshed, stale after the lease. */
    put(dir, "d__d", "saeval-claim otherhost 12 99 1700000000 otherhost-12-1\n", 0);
    EXPECT(sv_claim_try(dir, "d__d", &me, 60, &st, &holder) == SV_OK && st == SV_CLAIM_HELD_BY_OTHER, "fresh remote claim respected");
    put(dir, "d__d", "saeval-claim otherhost 12 99 1700000000 otherhost-12-1\n", time(NULL) - 120);
    EXPECT(sv_claim_try(dir, "d__d", &me, 60, &st, &holder) == SV_OK && st == SV_CLAIM_TAKEN, "expired remote claim taken over");
    /* The holder's heartbeat keeps its claims fresh. */
    put(dir, "e__d", "saeval-claim otherhost 12 99 1700000000 otherhost-12-1\n", time(NULL) - 120);
    sv_claim_owner remote;
    memset(&remote, 0, sizeof remote);
    snprintf(remote.token, sizeof remote.token, "otherhost-12-1");
    EXPECT(sv_claim_refresh(dir, &remote) == SV_OK, "refresh");
    EXPECT(sv_claim_try(dir, "e__d", &me, 60, &st, &holder) == SV_OK && st == SV_CLAIM_HELD_BY_OTHER, "refreshed claim respected");
    sv_claim_done(dir, &remote);
    EXPECT(sv_claim_try(dir, "e__d", &me, 60, &st, &holder) == SV_OK && st == SV_CLAIM_TAKEN, "heartbeat gone: expired");

    /* 5. Garbage is not a claim. */
    put(dir, "f__d", "\x01\x02 not a claim", 0);
    EXPECT(sv_claim_try(dir, "f__d", &me, 0, &st, &holder) == SV_OK && st == SV_CLAIM_TAKEN, "garbage claim taken over");

    /* 6. Release by the holder removes it. */
    sv_claim_release(dir, "a__d", &me);
    EXPECT(!exists(dir, "a__d"), "release by the holder");

    /* 7. Racing takeovers of one stale claim: exactly one winner. */
    for (int round = 0; round < 20; round++) {
        put(dir, "g__d", "saeval-claim otherhost 12 99 1700000000 otherhost-12-1\n", time(NULL) - 1000);
        enum { N = 6 };
        pid_t kids[N];
        for (int i = 0; i < N; i++) {
            kids[i] = fork();
            if (kids[i] == 0) {
                sv_claim_owner k;
                sv_claim_me(&k);
                sv_claim_state s2;
                sv_claim_owner h2;
                if (sv_claim_try(dir, "g__d", &k, 60, &s2, &h2) != SV_OK) _exit(3);
                /* Winners stay alive a moment so their claim is live for the others. */
                if (s2 == SV_CLAIM_TAKEN) { usleep(200000); _exit(0); }
                _exit(1);
            }
        }
        int won = 0, lost = 0;
        for (int i = 0; i < N; i++) {
            int ws = 0;
            waitpid(kids[i], &ws, 0);
            if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) won++;
            else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 1) lost++;
        }
        if (won != 1 || lost != N - 1) {
            fprintf(stderr, "FAIL round %d: %d winners, %d losers of %d\n", round, won, lost, N);
            failures++;
            break;
        }
    }
    if (failures) { fprintf(stderr, "test_claim: %d failures\n", failures); return 1; }
    printf("test_claim: all checks passed\n");
    return 0;
}
