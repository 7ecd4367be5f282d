// libFuzzer target: what the edge's store parses. (1) CacheKey over a hostile host, path and
// query (the input split at its first two NUL bytes): it must not crash, must be stable
// (normalizing a key's own query again gives the same key), and must keep the layout
// "GET /path?query host" (no raw space inside the host or path parts). (2) An object file whose
// head is the fuzz input, framed with a valid prelude and valid checksums so that the head
// parser (not just the checksum) is what the input reaches: ReadObjectHead and ReadObjectFile
// must refuse or accept it without crashing, and agree with each other.
#include <openssl/evp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
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
  return 0;
}
