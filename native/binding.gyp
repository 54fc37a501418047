{
  "targets": [
    {
      "target_name": "cattle_native",
      "sources": ["cattle_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
