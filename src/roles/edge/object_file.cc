// The disk tier's file format (see object_file.h for the layout, why it is split in two
// checksummed parts, and the head file beside it). No fsync: the files are a cache. After a
// crash or a power loss a file may be missing, empty or torn; the size and checksum checks find
// it, it is removed and counted, and the edge fetches that object from the origin again (a torn
// head file only loses the refresh: the object file's own head answers).
// Thread-safety: pure functions over files. Ownership: returns owned values.
#include "roles/edge/object_file.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace millions::edge {

namespace {

constexpr char kMagic[8] = {'M', 'E', 'D', 'G', 'E', 'O', 'B', 'J'};
constexpr char kHeadMagic[8] = {'M', 'E', 'D', 'G', 'E', 'H', 'E', 'D'};
constexpr uint32_t kVersion = 1;      // of the object file
constexpr uint32_t kHeadVersion = 1;  // of the head file
constexpr size_t kPreludeBytes = 24;
constexpr size_t kShaBytes = 32;
// A head holds the origin's header lines and tags: far below this unless the file is garbage.
constexpr uint32_t kMaxHeadBytes = 16 << 20;

// Every field of ResponseInfo and CacheControl is persisted below. A new field changes these
// sizes: persist it too (and bump kVersion), then update the numbers.
static_assert(sizeof(void*) != 8 || sizeof(CacheControl) == 120,
              "CacheControl changed: persist the new field in object_file.cc");
static_assert(sizeof(void*) != 8 || sizeof(ResponseInfo) == 264,
              "ResponseInfo changed: persist the new field in object_file.cc");

using Sha = std::array<unsigned char, kShaBytes>;

Sha Sha256(std::initializer_list<std::string_view> parts) {
  Sha out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (std::string_view p : parts) EVP_DigestUpdate(ctx, p.data(), p.size());
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

std::string_view View(const Sha& sha) {
  return {reinterpret_cast<const char*>(sha.data()), sha.size()};
}

class Encoder {
 public:
  void U8(uint8_t v) { out_ += static_cast<char>(v); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) U8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) U8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void Strs(const std::vector<std::string>& v) {
    U32(static_cast<uint32_t>(v.size()));
    for (const std::string& s : v) Str(s);
  }
  void Opt(const std::optional<int64_t>& v) {
    Bool(v.has_value());
    if (v) I64(*v);
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// Reads what Encoder wrote; any overrun sets !ok() and returns zeros from then on.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  uint8_t U8() {
    if (!Need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(U8()) << (8 * i);
    return v;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(U8()) << (8 * i);
    return v;
  }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  bool Bool() {
    uint8_t v = U8();
    if (v > 1) ok_ = false;
    return v == 1;
  }
  std::string Str() {
    uint32_t n = U32();
    if (!Need(n)) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  std::vector<std::string> Strs() {
    uint32_t n = U32();
    std::vector<std::string> v;
    for (uint32_t i = 0; i < n && ok_; ++i) v.push_back(Str());
    return v;
  }
  std::optional<int64_t> Opt() {
    if (!Bool()) return std::nullopt;
    return I64();
  }

 private:
  bool Need(size_t n) {
    if (ok_ && in_.size() >= n) return true;
    ok_ = false;
    return false;
  }
  std::string_view in_;
  bool ok_ = true;
};

std::string EncodeHead(const Object& o, uint64_t seq) {
  Encoder e;
  e.Str(o.key);
  e.Str(o.vary_key);
  e.U64(seq);
  e.I64(o.status);
  e.Str(o.headers);
  e.Strs(o.tags);
  const Stored& m = o.meta;
  e.I64(m.request_time);
  e.I64(m.response_time);
  e.I64(m.lifetime);
  const ResponseInfo& r = m.info;
  e.I64(r.status);
  e.Opt(r.date);
  e.Opt(r.expires);
  e.Bool(r.expires_present);
  e.Opt(r.age);
  e.Opt(r.last_modified);
  e.Str(r.etag);
  e.Strs(r.vary);
  e.Bool(r.pragma_no_cache);
  const CacheControl& c = r.cc;
  e.Opt(c.max_age);
  e.Opt(c.s_maxage);
  e.Opt(c.min_fresh);
  e.Opt(c.max_stale);
  e.Bool(c.max_stale_any);
  e.Opt(c.stale_while_revalidate);
  e.Opt(c.stale_if_error);
  for (bool b :
       {c.no_store, c.no_cache, c.private_, c.public_, c.must_revalidate, c.proxy_revalidate,
        c.immutable, c.only_if_cached, c.no_transform, c.must_understand})
    e.Bool(b);
  return std::move(e.out());
}

bool DecodeHead(std::string_view head, Object* o, uint64_t* seq) {
  Decoder d(head);
  o->key = d.Str();
  o->vary_key = d.Str();
  *seq = d.U64();
  o->status = static_cast<int>(d.I64());
  o->headers = d.Str();
  o->tags = d.Strs();
  Stored& m = o->meta;
  m.request_time = d.I64();
  m.response_time = d.I64();
  m.lifetime = d.I64();
  ResponseInfo& r = m.info;
  r.status = static_cast<int>(d.I64());
  r.date = d.Opt();
  r.expires = d.Opt();
  r.expires_present = d.Bool();
  r.age = d.Opt();
  r.last_modified = d.Opt();
  r.etag = d.Str();
  r.vary = d.Strs();
  r.pragma_no_cache = d.Bool();
  CacheControl& c = r.cc;
  c.max_age = d.Opt();
  c.s_maxage = d.Opt();
  c.min_fresh = d.Opt();
  c.max_stale = d.Opt();
  c.max_stale_any = d.Bool();
  c.stale_while_revalidate = d.Opt();
  c.stale_if_error = d.Opt();
  for (bool* b :
       {&c.no_store, &c.no_cache, &c.private_, &c.public_, &c.must_revalidate, &c.proxy_revalidate,
        &c.immutable, &c.only_if_cached, &c.no_transform, &c.must_understand})
    *b = d.Bool();
  return d.done();
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ReadAll(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool PreadAll(int fd, char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close(2)'s result: a failed close can mean a failed write (NFS, quota).
  bool Close() {
    int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

// Reads and checks the prelude (against the file's size); leaves the file at the head.
ReadStatus ReadPrelude(int fd, const std::string& path, char (&prelude)[kPreludeBytes],
                       uint32_t* head_len, uint64_t* body_len, uint64_t* size, std::string* error) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *error = "stat " + path + ": " + std::strerror(errno);
    return ReadStatus::kBad;
  }
  if (static_cast<uint64_t>(st.st_size) < kPreludeBytes || !ReadAll(fd, prelude, kPreludeBytes)) {
    *error = path + ": shorter than its prelude";
    return ReadStatus::kBad;
  }
  Decoder d(std::string_view(prelude + 8, kPreludeBytes - 8));
  uint32_t version = d.U32();
  *head_len = d.U32();
  *body_len = d.U64();
  if (std::memcmp(prelude, kMagic, 8) != 0 || version != kVersion) {
    *error = path + ": not an object file of version " + std::to_string(kVersion);
    return ReadStatus::kBad;
  }
  *size = static_cast<uint64_t>(st.st_size);
  if (*head_len > kMaxHeadBytes || *body_len > *size ||
      *size != kPreludeBytes + *head_len + kShaBytes + *body_len + kShaBytes) {
    *error = path + ": size " + std::to_string(*size) + " does not match its prelude (torn?)";
    return ReadStatus::kBad;
  }
  return ReadStatus::kOk;
}

// Reads and checks the prelude, head and head_sha; leaves the file at the body.
ReadStatus ReadHead(int fd, const std::string& path, ObjectFile* out, uint64_t* body_len,
                    std::string* error) {
  char prelude[kPreludeBytes];
  uint32_t head_len = 0;
  uint64_t size = 0;
  if (ReadStatus s = ReadPrelude(fd, path, prelude, &head_len, body_len, &size, error);
      s != ReadStatus::kOk)
    return s;
  std::string head(head_len + kShaBytes, '\0');
  if (!ReadAll(fd, head.data(), head.size())) {
    *error = path + ": short read";
    return ReadStatus::kBad;
  }
  std::string_view head_view(head.data(), head_len);
  Sha sha = Sha256({std::string_view(prelude, kPreludeBytes), head_view});
  if (View(sha) != std::string_view(head).substr(head_len)) {
    *error = path + ": head checksum mismatch";
    return ReadStatus::kBad;
  }
  auto object = std::make_shared<Object>();
  if (!DecodeHead(head_view, object.get(), &out->seq)) {
    *error = path + ": head does not parse";
    return ReadStatus::kBad;
  }
  out->object = std::move(object);
  out->file_bytes = out->object_bytes = size;
  out->object_seq = out->seq;
  out->head_file = HeadFile::kNone;
  out->head_file_error.clear();
  return ReadStatus::kOk;
}

ReadStatus Open(const std::string& path, int* fd, std::string* error) {
  *fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (*fd >= 0) return ReadStatus::kOk;
  if (errno == ENOENT) return ReadStatus::kMissing;
  *error = "open " + path + ": " + std::strerror(errno);
  return ReadStatus::kBad;
}

// Writes the parts to `path` (truncating) and closes it, close(2)'s result checked.
bool WriteParts(const std::string& path, std::initializer_list<std::string_view> parts,
                std::string* error) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    *error = "open " + path + ": " + std::strerror(errno);
    return false;
  }
  for (std::string_view p : parts) {
    if (!WriteAll(fd.get(), p)) {
      *error = "write " + path + ": " + std::strerror(errno);
      return false;
    }
  }
  if (!fd.Close()) {
    *error = "close " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

// The object file's body_sha (its last 32 bytes), the file's size known from its prelude.
ReadStatus ReadBodySha(int fd, const std::string& path, uint64_t size, std::string* sha,
                       std::string* error) {
  sha->assign(kShaBytes, '\0');
  if (size < kShaBytes || !PreadAll(fd, sha->data(), kShaBytes, size - kShaBytes)) {
    *error = path + ": short read";
    return ReadStatus::kBad;
  }
  return ReadStatus::kOk;
}

// The head file at `path` over `out`, which holds the object file's head (and body, if read):
// when it applies, its head replaces out->object's (keeping the body), out->seq and
// out->file_bytes become the pair's. `stamp` gives the object file's BodyStamp; it is called
// only when there is a head file (a start-up scan reads no trailer of a file without one).
template <class Stamp>
void ApplyHeadFile(const std::string& path, Stamp&& stamp, ObjectFile* out) {
  auto fail = [&](HeadFile state, const std::string& why) {
    out->head_file = state;
    out->head_file_error = path + ": " + why;
  };
  int raw = -1;
  std::string error;
  ReadStatus s = Open(path, &raw, &error);
  if (s == ReadStatus::kMissing) return;
  if (s != ReadStatus::kOk) {
    out->head_file = HeadFile::kBad;
    out->head_file_error = error;
    return;
  }
  Fd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail(HeadFile::kBad, std::strerror(errno));
  constexpr uint64_t kFixed = kPreludeBytes + 2 * kShaBytes;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kFixed || size > kFixed + kMaxHeadBytes)
    return fail(HeadFile::kBad, "size " + std::to_string(size) + " is not a head file's (torn?)");
  std::string file(size, '\0');
  if (!ReadAll(fd.get(), file.data(), file.size())) return fail(HeadFile::kBad, "short read");
  std::string_view v = file;
  std::string_view prelude = v.substr(0, kPreludeBytes);
  Decoder d(prelude.substr(8));
  uint32_t version = d.U32();
  uint32_t head_len = d.U32();
  uint64_t body_len = d.U64();
  if (std::memcmp(prelude.data(), kHeadMagic, 8) != 0 || version != kHeadVersion)
    return fail(HeadFile::kBad, "not a head file of version " + std::to_string(kHeadVersion));
  if (size != kFixed + head_len)
    return fail(HeadFile::kBad,
                "size " + std::to_string(size) + " does not match its prelude (torn?)");
  std::string_view body_sha = v.substr(kPreludeBytes, kShaBytes);
  std::string_view head = v.substr(kPreludeBytes + kShaBytes, head_len);
  if (View(Sha256({prelude, body_sha, head})) != v.substr(size - kShaBytes))
    return fail(HeadFile::kBad, "head checksum mismatch");
  auto object = std::make_shared<Object>();
  uint64_t seq = 0;
  if (!DecodeHead(head, object.get(), &seq)) return fail(HeadFile::kBad, "head does not parse");
  if (object->key != out->object->key || object->vary_key != out->object->vary_key)
    return fail(HeadFile::kBad, "holds another object's head");
  BodyStamp body;
  if (!stamp(&body, &error)) return fail(HeadFile::kIgnored, error);
  if (body_len != body.length || body_sha != body.sha)
    return fail(HeadFile::kIgnored, "written for another body");
  if (seq <= out->object_seq) return fail(HeadFile::kIgnored, "older than its object file");
  object->body = std::move(out->object->body);
  out->object = std::move(object);
  out->seq = seq;
  out->file_bytes = out->object_bytes + size;
  out->head_file = HeadFile::kUsed;
}

}  // namespace

std::string ObjectFileName(std::string_view key, std::string_view vary_key) {
  Sha sha = Sha256({key, std::string_view("\0", 1), vary_key});
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string name;
  for (size_t i = 0; i < 16; ++i) {
    name += kHexDigits[sha[i] >> 4];
    name += kHexDigits[sha[i] & 15];
  }
  return name;
}

std::string HeadFilePath(std::string_view object_path) {
  if (object_path.ends_with(".obj")) object_path.remove_suffix(4);
  std::string path(object_path);
  path += ".head";
  return path;
}

bool WriteObjectFile(const std::string& path, const Object& object, uint64_t seq,
                     uint64_t* file_bytes, std::string* error) {
  std::string head = EncodeHead(object, seq);
  std::string_view body = object.body ? std::string_view(*object.body) : std::string_view();
  Encoder prelude;
  prelude.out().append(kMagic, 8);
  prelude.U32(kVersion);
  prelude.U32(static_cast<uint32_t>(head.size()));
  prelude.U64(body.size());
  Sha head_sha = Sha256({prelude.out(), head});
  Sha body_sha = Sha256({body});
  if (!WriteParts(path, {prelude.out(), head, View(head_sha), body, View(body_sha)}, error))
    return false;
  *file_bytes = kPreludeBytes + head.size() + kShaBytes + body.size() + kShaBytes;
  return true;
}

ReadStatus ReadBodyStamp(const std::string& object_path, BodyStamp* out, std::string* error) {
  int raw = -1;
  if (ReadStatus s = Open(object_path, &raw, error); s != ReadStatus::kOk) return s;
  Fd fd(raw);
  char prelude[kPreludeBytes];
  uint32_t head_len = 0;
  uint64_t size = 0;
  if (ReadStatus s =
          ReadPrelude(fd.get(), object_path, prelude, &head_len, &out->length, &size, error);
      s != ReadStatus::kOk)
    return s;
  return ReadBodySha(fd.get(), object_path, size, &out->sha, error);
}

bool WriteHeadFile(const std::string& path, const Object& object, uint64_t seq,
                   const BodyStamp& body, uint64_t* file_bytes, std::string* error) {
  if (body.sha.size() != kShaBytes) {
    *error = path + ": the body's SHA-256 is not 32 bytes";
    return false;
  }
  std::string head = EncodeHead(object, seq);
  Encoder prelude;
  prelude.out().append(kHeadMagic, 8);
  prelude.U32(kHeadVersion);
  prelude.U32(static_cast<uint32_t>(head.size()));
  prelude.U64(body.length);
  Sha head_sha = Sha256({prelude.out(), body.sha, head});
  if (!WriteParts(path, {prelude.out(), body.sha, head, View(head_sha)}, error)) return false;
  *file_bytes = kPreludeBytes + kShaBytes + head.size() + kShaBytes;
  return true;
}

ReadStatus ReadObjectHead(const std::string& path, ObjectFile* out, std::string* error) {
  int raw = -1;
  if (ReadStatus s = Open(path, &raw, error); s != ReadStatus::kOk) return s;
  Fd fd(raw);
  uint64_t body_len = 0;
  if (ReadStatus s = ReadHead(fd.get(), path, out, &body_len, error); s != ReadStatus::kOk)
    return s;
  auto stamp = [&](BodyStamp* body, std::string* why) {
    body->length = body_len;
    return ReadBodySha(fd.get(), path, out->object_bytes, &body->sha, why) == ReadStatus::kOk;
  };
  ApplyHeadFile(HeadFilePath(path), stamp, out);
  return ReadStatus::kOk;
}

ReadStatus ReadObjectFile(const std::string& path, ObjectFile* out, std::string* error) {
  int raw = -1;
  if (ReadStatus s = Open(path, &raw, error); s != ReadStatus::kOk) return s;
  Fd fd(raw);
  uint64_t body_len = 0;
  if (ReadStatus s = ReadHead(fd.get(), path, out, &body_len, error); s != ReadStatus::kOk)
    return s;
  auto body = std::make_shared<std::string>(body_len, '\0');
  char sha[kShaBytes];
  if (!ReadAll(fd.get(), body->data(), body->size()) || !ReadAll(fd.get(), sha, kShaBytes)) {
    *error = path + ": short read";
    return ReadStatus::kBad;
  }
  if (View(Sha256({*body})) != std::string_view(sha, kShaBytes)) {
    *error = path + ": body checksum mismatch";
    return ReadStatus::kBad;
  }
  out->object->body = std::move(body);
  auto stamp = [&](BodyStamp* b, std::string*) {
    b->length = body_len;
    b->sha.assign(sha, kShaBytes);
    return true;
  };
  ApplyHeadFile(HeadFilePath(path), stamp, out);
  return ReadStatus::kOk;
}

}  // namespace millions::edge
