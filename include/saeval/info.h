/* `saeval info PATH`: human-readable description of an SAE directory or an
 * activation store. Called by one process. */
#ifndef SAEVAL_INFO_H
#define SAEVAL_INFO_H
#include <stdio.h>
#include "saeval/error.h"

sv_rc sv_info_print(const char *path, FILE *out);

#endif
