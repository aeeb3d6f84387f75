#include "saeval/cli.h"
#include <stdio.h>
int sv_cli_main(int argc, char **argv) { (void)argc; (void)argv; puts("saeval"); return 0; }
