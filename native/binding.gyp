{
  "targets": [
    {
      "target_name": "ambit_native",
      "sources": ["ambit_native.c", "ambit_fdpass.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
