"""Applications built on the library: the example CSC (KTest) and the host-metrics publisher."""
