// The disk tier's file format: one object a file, named by ObjectFileName(key, vary_key), and
// beside it, once a revalidation refreshed the object's head, a head file (NAME.obj, NAME.head).
//
// The object file (NAME.obj):
//   prelude   "MEDGEOBJ" | u32 version (1) | u32 head_len | u64 body_len      (24 bytes)
//   head      key, vary_key, seq, status, headers, tags, Stored (every ResponseInfo and
//             CacheControl field)                                             (head_len bytes)
//   head_sha  SHA-256 of prelude and head                                     (32 bytes)
//   body                                                                      (body_len bytes)
//   body_sha  SHA-256 of body                                                 (32 bytes)
//
// The head file (NAME.head): a newer head for the body the object file holds, so that a
// revalidation (a 304: new headers and freshness, the same body) writes a few hundred bytes
// instead of the whole object again.
//   prelude   "MEDGEHED" | u32 version (1) | u32 head_len | u64 body_len      (24 bytes)
//   body_sha  the body_sha of the object file it applies to                   (32 bytes)
//   head      as in the object file, with the head file's own seq            (head_len bytes)
//   head_sha  SHA-256 of prelude, body_sha and head                           (32 bytes)
// A head file applies when it is sound, names the same key and vary_key, was written for the
// object file's body (same body_len and body_sha) and is newer (a higher seq); then its head
// replaces the object file's. One that does not apply is ignored (the object file's own head
// answers) and the disk tier removes it: a crash between a whole rewrite's rename and the old
// head file's unlink leaves an older head file, which loses on seq.
//
// Integers little-endian; strings a u32 length then bytes; optionals a presence byte then the
// value. The head has its own checksum so that OpenObjectStore can rebuild its index from the
// heads alone (a file's size must also be exact, which catches a truncated body), while
// LoadFromDisk checks both. A version other than 1 is an error (the file is removed: it is a
// cache). `seq` is the writer's order, for "oldest written removed first" across restarts.
// Thread-safety: pure functions and plain file I/O; the caller serializes writes to a path (a
// reader may meet a rename at any point: each file is read through one descriptor, and the
// pair's seqs tell a mix apart). Ownership: returns owned values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "roles/edge/store.h"

namespace millions::edge {

// 32 lower-case hex characters (128 bits of SHA-256 over key, a NUL and vary_key).
std::string ObjectFileName(std::string_view key, std::string_view vary_key);
// The head file beside an object file: "DIR/NAME.obj" -> "DIR/NAME.head" (another path gets
// ".head" appended).
std::string HeadFilePath(std::string_view object_path);

enum class HeadFile {
  kNone,     // no head file
  kUsed,     // its head replaced the object file's
  kIgnored,  // sound, but for another body or older than the object file
  kBad,      // unreadable, torn, corrupt, another version, or for another key
};

struct ObjectFile {
  std::shared_ptr<Object> object;  // body is null when only the head was read
  uint64_t seq = 0;                // the head's: the head file's when it is used
  uint64_t file_bytes = 0;         // the object file's size, plus the head file's when used
  uint64_t object_seq = 0;         // the object file's own seq and size
  uint64_t object_bytes = 0;
  HeadFile head_file = HeadFile::kNone;
  std::string head_file_error;  // why, for kIgnored and kBad
};

// Writes the object's file at `path` (truncating); its size in *file_bytes. false and `error`
// on any failure (a partial file may be left: the caller removes it).
bool WriteObjectFile(const std::string& path, const Object& object, uint64_t seq,
                     uint64_t* file_bytes, std::string* error);

// The body an object file holds, as its prelude and its last 32 bytes record it.
struct BodyStamp {
  uint64_t length = 0;
  std::string sha;  // 32 bytes
};

enum class ReadStatus {
  kOk,
  kMissing,  // no such file
  kBad,      // unreadable, torn, corrupt, or another version: `error` says which
};
// The object file's prelude (checked against the file's size) and body_sha; neither the head
// nor the body is read.
ReadStatus ReadBodyStamp(const std::string& object_path, BodyStamp* out, std::string* error);
// Writes a head file at `path` (truncating): the object's head with `seq`, for the body `body`
// describes (the object file's, from ReadBodyStamp). Its size in *file_bytes. false and `error`
// on any failure (a partial file may be left: the caller removes it).
bool WriteHeadFile(const std::string& path, const Object& object, uint64_t seq,
                   const BodyStamp& body, uint64_t* file_bytes, std::string* error);

// The head only (prelude, head, head_sha and the file's exact size checked), with the head
// file's when it applies (HeadFilePath(path); out->head_file says what became of it). The
// status is the object file's: a bad head file is not an error of the object file.
ReadStatus ReadObjectHead(const std::string& path, ObjectFile* out, std::string* error);
// The whole object, both checksums checked, with the head file's head when it applies.
ReadStatus ReadObjectFile(const std::string& path, ObjectFile* out, std::string* error);

}  // namespace millions::edge
