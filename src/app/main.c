/* Thin command-line front end; everything lives in the saevalcore library. */
#include "saeval/cli.h"

int main(int argc, char **argv)
{
    sv_cli_prepare_env(argv);
    return sv_cli_main(argc, argv);
}
