// Package rng reproduces PyTorch's CPU random generator, so that a seed gives
// the same starting noise as diffusers does with
// torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)).
//
// What is reproduced, from PyTorch's ATen sources:
//
//   - the engine: a 32-bit Mersenne Twister (mt19937) seeded with the low 32
//     bits of the seed, random() = one draw, random64() = two draws, the first
//     as the high word;
//   - float32 uniforms (torch.rand): the low 24 bits of random() times 2^-24;
//   - torch.randn of 16 or more float32 elements: the vectorised Box-Muller
//     fill of x86-64 builds (normal_fill_AVX2 with avx_mathfun's log and
//     sincos, evaluated in float32 with the fused multiply-adds GCC forms);
//   - torch.randn of fewer than 16 elements: the scalar float64 Box-Muller of
//     at::normal_distribution<double>, whose second value is kept in the
//     generator and handed out by the next scalar draw.
//
// Values match the reference file ../shared/rng/torch_randn_cpu.json
// (torch 1.13, x86-64) bit for bit. PyTorch builds that lack AVX2 (aarch64,
// old x86) use libm's log/sin/cos for the same fill and differ from these
// values in the last bit or two.
//
// A Generator is not safe for concurrent use; PyTorch serialises access with a
// mutex, here the owner of the generator does.
package rng
