#ifndef SAEVAL_CLI_H
#define SAEVAL_CLI_H
/* Dispatches `saeval run|synth|info|--help`; returns the process exit code. */
int sv_cli_main(int argc, char **argv);
/* Libraries that read their settings once, when they load (OpenBLAS's
 * kernel choice, libgomp's spin-wait), can only be steered through the
 * environment before the process starts. When saeval's defaults differ
 * from the environment it sets them and re-executes itself, once, before
 * MPI is initialized. Returns only if no re-exec was needed or it failed. */
void sv_cli_prepare_env(char **argv);
#endif
