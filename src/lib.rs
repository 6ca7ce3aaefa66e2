//! Support code shared by the examples, the cross-process integration tests and the
//! benchmarks of shmx. Not published.
