// The rows the data layer reads and writes, and the consistency a read asks for: shared by
// every store facet (user_store.h, photo_store.h, job_store.h, session_store.h).
// Thread-safety: plain values. Ownership: each row owns its strings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace millions::data {

// Every read states the consistency it needs, as userver's queries do: kPrimary for writes and
// reads that must see the caller's own writes, kReplica where staleness is fine. The embedded
// store has one copy and ignores it; replicated stores route by it.
enum class Consistency { kPrimary, kReplica };

struct UserRow {
  int64_t id = 0;
  std::string handle;
  std::string display_name;
  std::string bio;
  std::string password_hash;
  int64_t created_ms = 0;
  int64_t followers = 0;  // filled on reads
  int64_t following = 0;
  int64_t photos = 0;
};

struct SessionRow {
  std::string token_hash;  // SHA-256 of the token: a leaked database does not leak sessions
  int64_t user_id = 0;
  int64_t expires_ms = 0;
};

struct PhotoVersion {
  int64_t job_id = 0;
  std::string media_key;
  int width = 0;
  int height = 0;
};

struct PhotoRow {
  int64_t id = 0;
  int64_t owner_id = 0;
  std::string caption;
  std::string media_key;
  std::string content_type;
  int width = 0;
  int height = 0;
  int64_t created_ms = 0;
  std::vector<PhotoVersion> versions;  // oldest first
};

struct JobRow {
  int64_t id = 0;
  int64_t photo_id = 0;
  int64_t owner_id = 0;
  std::string status;  // queued | running | done | failed
  std::string ops_json;
  std::string result_key;
  std::string error;
  int64_t created_ms = 0;
  int64_t finished_ms = 0;
  int attempts = 0;
};

// A request made with an Idempotency-Key, as the first one with that key left it.
struct IdempotencyRecord {
  std::string fingerprint;  // of the first request: a different request may not reuse the key
  int status = 0;           // 0 while the first request runs (or when its outcome is unknown)
  std::string body;
  int64_t created_ms = 0;
};

struct Blob {
  std::string content_type;
  std::string bytes;
};

}  // namespace millions::data
