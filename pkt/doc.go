// Package pkt holds allocation-free packet helpers for the data path:
// header decoding into a caller-provided struct of offsets, 5-tuples and a
// symmetric flow hash, Internet checksums (full and RFC 1624 incremental) and
// builders for generated frames.
//
// Nothing here allocates, keeps a reference to a frame, or panics on any
// input: every offset is checked against the frame before it is read, and a
// frame that does not parse is an error (see FrameError). Functions and
// methods are safe for concurrent use as long as callers do not share a
// Headers value or a frame being written.
//
// Frames start at the Ethernet header (the layer-2 offset is always 0) and
// exclude the FCS.
package pkt
