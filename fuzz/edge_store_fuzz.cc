// libFuzzer target: what the edge's store parses. (1) CacheKey over a hostile host, path and
// query (the input split at its first two NUL bytes): it must not crash, must be stable
// (normalizing a key's own query again gives the same key), and must keep the layout
// "GET /path?query host" (no raw space inside the host or path parts). (2) An object file whose
// head is the fuzz input, framed with a valid prelude and valid checksums so that the head
// parser (not just the checksum) is what the input reaches: ReadObjectHead and ReadObjectFile
// must refuse or accept it without crashing, and agree with each other. (3) A sound object file
// with a head file (a revalidation's refreshed head) whose head is the fuzz input, framed the
// same way for that object file's body: both readers must agree on whether it applies, and
// whatever they say, the object keeps its key and its body.
#include <openssl/evp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "roles/edge/object_file.h"
#include "roles/edge/store.h"

namespace {

using namespace millions::edge;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string Sha256(std::string_view a, std::string_view b = {}) {
  unsigned char out[32];
  unsigned int n = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, a.data(), a.size());
  EVP_DigestUpdate(ctx, b.data(), b.size());
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(out), 32);
}

void Put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void Put64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}

void Keys(std::string_view in) {
  size_t a = in.find('\0');
  size_t b = a == std::string_view::npos ? a : in.find('\0', a + 1);
  std::string_view host = in.substr(0, a);
  std::string_view path = a == std::string_view::npos ? "" : in.substr(a + 1, b - a - 1);
  std::string_view query = b == std::string_view::npos ? "" : in.substr(b + 1);
  std::string key = CacheKey("GET", host, path, query);
  Check(key.rfind("GET /", 0) == 0 || key.rfind("GET ", 0) == 0);
  // Exactly two spaces: after the method and before the host (the parts escape their own).
  size_t spaces = 0;
  for (char c : key) spaces += c == ' ';
  Check(spaces == 2);
  Check(CacheKey("HEAD", host, path, query) == key);
}

// Writes `data` to `path`; false if it cannot.
bool Save(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  return std::fclose(f) == 0 && ok;
}

std::string TmpPath(const char* what) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "/tmp/edge_store_fuzz_%s.%d", what, static_cast<int>(getpid()));
  return buf;
}

void HeadFilePair(std::string_view head) {
  static const std::string path = TmpPath("pair") + ".obj";
  static const bool written = [] {
    Object o;
    o.key = "GET /k h";
    o.body = std::make_shared<const std::string>("body");
    uint64_t bytes = 0;
    std::string error;
    return WriteObjectFile(path, o, 7, &bytes, &error);
  }();
  if (!written) return;
  BodyStamp stamp;
  std::string error;
  if (ReadBodyStamp(path, &stamp, &error) != ReadStatus::kOk) return;
  std::string prelude = "MEDGEHED";
  Put32(prelude, 1);
  Put32(prelude, static_cast<uint32_t>(head.size()));
  Put64(prelude, stamp.length);
  std::string file = prelude + stamp.sha;
  file.append(head);
  file.append(Sha256(prelude + stamp.sha, head));
  if (!Save(HeadFilePath(path), file)) return;
  ObjectFile h, whole;
  std::string e1, e2;
  Check(ReadObjectHead(path, &h, &e1) == ReadStatus::kOk);
  Check(ReadObjectFile(path, &whole, &e2) == ReadStatus::kOk);
  Check(h.head_file == whole.head_file && h.seq == whole.seq && h.file_bytes == whole.file_bytes);
  Check(h.head_file != HeadFile::kNone);
  Check((h.head_file == HeadFile::kUsed) == (h.seq != 7));
  Check(whole.object->key == "GET /k h" && whole.object->vary_key.empty());
  Check(whole.object->body && *whole.object->body == "body");
}

void File(std::string_view head) {
  static const std::string path = [] {
    char buf[64];
    std::snprintf(buf, sizeof buf, "/tmp/edge_store_fuzz.%d", static_cast<int>(getpid()));
    return std::string(buf);
  }();
  std::string body = "body";
  std::string prelude = "MEDGEOBJ";
  Put32(prelude, 1);
  Put32(prelude, static_cast<uint32_t>(head.size()));
  Put64(prelude, body.size());
  std::string file = prelude;
  file.append(head);
  file.append(Sha256(prelude, head));
  file.append(body);
  file.append(Sha256(body));
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  std::fwrite(file.data(), 1, file.size(), f);
  std::fclose(f);
  ObjectFile h, whole;
  std::string e1, e2;
  ReadStatus rh = ReadObjectHead(path, &h, &e1);
  ReadStatus rw = ReadObjectFile(path, &whole, &e2);
  Check(rh == rw);
  if (rw == ReadStatus::kOk) {
    Check(whole.object && whole.object->body && *whole.object->body == body);
    Check(h.object && h.object->key == whole.object->key);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Keys(in);
  File(in);
  HeadFilePair(in);
  return 0;
}
