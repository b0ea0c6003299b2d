#include "textflag.h"

// func prefetch(p *atomic.Uint64)
//
// PREFETCHT0 asks for p's cache line in every cache level. Unlike a load it retires at once,
// so the core runs on while the line comes from DRAM. It reads nothing the program sees and
// cannot fault.
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	RET
