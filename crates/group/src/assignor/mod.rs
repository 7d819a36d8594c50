//! Server-side assignors of KIP-848 (`uniform`, `range`). STUB.
