//go:build linux

#include "textflag.h"

// func cputicks() int64
TEXT ·cputicks(SB), NOSPLIT|NOFRAME, $0-8
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+0(FP)
	RET
