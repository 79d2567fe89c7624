/* Argument checks shared by the addon's C files (defined in ambit_native.c). Each returns
 * false (or NULL) after throwing a TypeError with Node's error codes. */
#ifndef AMBIT_NAPI_ARGS_H
#define AMBIT_NAPI_ARGS_H
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

napi_value ambit_throw_type(napi_env env, const char *code, const char *msg);
bool ambit_arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out);
bool ambit_arg_fd(napi_env env, size_t argc, napi_value *argv, size_t i, int *fd);

#endif
