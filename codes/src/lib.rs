//! Pure decoders for what shop-floor scanners and RFID readers hand us. No I/O.
