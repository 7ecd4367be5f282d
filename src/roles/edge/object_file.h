// The disk tier's file format: one object a file, named by ObjectFileName(key, vary_key).
//
//   prelude   "MEDGEOBJ" | u32 version (1) | u32 head_len | u64 body_len      (24 bytes)
//   head      key, vary_key, seq, status, headers, tags, Stored (every ResponseInfo and
//             CacheControl field)                                             (head_len bytes)
//   head_sha  SHA-256 of prelude and head                                     (32 bytes)
//   body                                                                      (body_len bytes)
//   body_sha  SHA-256 of body                                                 (32 bytes)
//
// Integers little-endian; strings a u32 length then bytes; optionals a presence byte then the
// value. The head has its own checksum so that OpenObjectStore can rebuild its index from the
// heads alone (a file's size must also be exact, which catches a truncated body), while
// LoadFromDisk checks both. A version other than 1 is an error (the file is removed: it is a
// cache). `seq` is the writer's order, for "oldest written removed first" across restarts.
// Thread-safety: pure functions and plain file I/O; the caller serializes access to a path.
// Ownership: returns owned values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "roles/edge/store.h"

namespace millions::edge {

// 32 lower-case hex characters (128 bits of SHA-256 over key, a NUL and vary_key).
std::string ObjectFileName(std::string_view key, std::string_view vary_key);

struct ObjectFile {
  std::shared_ptr<Object> object;  // body is null when only the head was read
  uint64_t seq = 0;
  uint64_t file_bytes = 0;
};

// Writes the object's file at `path` (truncating); its size in *file_bytes. false and `error`
// on any failure (a partial file may be left: the caller removes it).
bool WriteObjectFile(const std::string& path, const Object& object, uint64_t seq,
                     uint64_t* file_bytes, std::string* error);

enum class ReadStatus {
  kOk,
  kMissing,  // no such file
  kBad,      // unreadable, torn, corrupt, or another version: `error` says which
};
// The head only (prelude, head, head_sha and the file's exact size checked).
ReadStatus ReadObjectHead(const std::string& path, ObjectFile* out, std::string* error);
// The whole object, both checksums checked.
ReadStatus ReadObjectFile(const std::string& path, ObjectFile* out, std::string* error);

}  // namespace millions::edge
