// mobilegen engine: the weights blob's header and its checks (internal).
//
// Layout (little-endian; mobilegen/weights.py writes it):
//   offset size field
//        0    4 magic "MGWB"
//        4    4 version
//        8    4 header size
//       12    4 reserved
//       16    8 payload size
//       24    4 CRC-32 of the payload (zlib's polynomial)
//       28    4 reserved
//       32   16 plan hash (must equal ModelPlan::blob_plan_hash)
//       48   16 reserved
//       64    - payload; BlobRef offsets count from here
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine.h"
#include "plan.h"

namespace mobilegen {

constexpr size_t kBlobHeaderSize = 64;
constexpr uint32_t kBlobVersion = 1;

// CRC-32 (polynomial 0xEDB88320, as zlib.crc32) of `size` bytes.
uint32_t crc32(const uint8_t* data, size_t size);

// Checks the header, sizes, checksum and plan hash of `blob` against `plan`, and that every
// BlobRef of every kernel lies inside the payload. On success sets *payload / *payload_size.
Status validate_blob(const ModelPlan& plan, const void* blob, size_t blob_size,
                     const uint8_t** payload, size_t* payload_size, std::string* error);

// The BlobRefs a kernel's params hold (at most kMaxBlobRefs), for bounds checks.
constexpr int kMaxBlobRefs = 5;
int kernel_blob_refs(const Kernel& k, BlobRef* refs);

}  // namespace mobilegen
