#ifndef SAEVAL_CLI_H
#define SAEVAL_CLI_H
/* Dispatches `saeval run|synth|info|--help`; returns the process exit code. */
int sv_cli_main(int argc, char **argv);
#endif
