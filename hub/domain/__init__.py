"""Pure code: errors, the message state machine, payload decoding. No I/O."""
