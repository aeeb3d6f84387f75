/* Thin command-line front end; everything lives in the saevalcore library. */
#include "saeval/cli.h"

int main(int argc, char **argv) { return sv_cli_main(argc, argv); }
