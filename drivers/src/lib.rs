//! Device I/O: turns scanners and readers into `Reading`s. Decoding lives in `bobbin-codes`.
