#pragma once
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final XOR
/// 0xFFFFFFFF) of `length` bytes, continuing from `crc`, the finished CRC of the bytes
/// before them (0 for none). Uses the SSE4.2 `crc32` instruction when the CPU has it.
uint32_t maestro_crc32c(uint32_t crc, const void *data, size_t length);

/// The same function computed with the portable slicing-by-8 tables only.
uint32_t maestro_crc32c_portable(uint32_t crc, const void *data, size_t length);

/// Whether `maestro_crc32c` uses a hardware instruction on this CPU.
int maestro_crc32c_is_hardware_accelerated(void);
