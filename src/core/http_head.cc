#include "core/http_head.h"

#include <array>

namespace millions::http {

namespace {

// RFC 9110 5.6.2 tchar.
constexpr std::array<bool, 256> MakeTchar() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = MakeTchar();

bool Tchar(char c) { return kTchar[static_cast<unsigned char>(c)]; }
// Visible ASCII and the spaces a field value may hold; obs-text (>= 0x80) falls back.
bool ValueChar(char c) { return (c >= 0x20 && c < 0x7f) || c == '\t'; }

// RFC 9110 5.6.1: elements separated by commas with optional spaces around them; each is a
// token or empty.
bool TokenList(std::string_view v) {
  for (;;) {
    size_t comma = v.find(',');
    std::string_view e = v.substr(0, comma);
    while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
    while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
    for (char c : e)
      if (!Tchar(c)) return false;
    if (comma == std::string_view::npos) return true;
    v.remove_prefix(comma + 1);
  }
}

bool Lower(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// Reads "HTTP/1.x" at `p`; sets version.
bool Version(std::string_view s, int& version) {
  if (s.size() != 8 || s.substr(0, 7) != "HTTP/1.") return false;
  if (s[7] == '1') {
    version = 11;
  } else if (s[7] == '0') {
    version = 10;
  } else {
    return false;
  }
  return true;
}

// Reads the fields of `block` after its first line (from `pos`) into `fields`. Each line is
// "name:" OWS value OWS CRLF; the block ends with an empty line. False on anything else.
bool Fields(std::string_view block, size_t pos, HeadField* fields, size_t& count) {
  count = 0;
  const size_t n = block.size();
  for (;;) {
    if (pos + 1 >= n) return false;
    if (block[pos] == '\r') return block[pos + 1] == '\n' && pos + 2 == n;
    size_t start = pos;
    while (pos < n && Tchar(block[pos])) ++pos;
    if (pos == start || pos >= n || block[pos] != ':') return false;
    std::string_view name = block.substr(start, pos - start);
    ++pos;
    while (pos < n && (block[pos] == ' ' || block[pos] == '\t')) ++pos;
    size_t vstart = pos;
    while (pos < n && ValueChar(block[pos])) ++pos;
    if (pos + 1 >= n || block[pos] != '\r' || block[pos + 1] != '\n') return false;
    size_t vend = pos;
    while (vend > vstart && (block[vend - 1] == ' ' || block[vend - 1] == '\t')) --vend;
    if (count == kFastHeadFields) return false;
    fields[count++] = {name, block.substr(vstart, vend - vstart)};
    pos += 2;
  }
}

}  // namespace

FastHead ParseRequestHead(std::string_view block, RequestHeadView& out) {
  const size_t n = block.size();
  size_t pos = 0;
  while (pos < n && block[pos] >= 'A' && block[pos] <= 'Z') ++pos;
  if (pos == 0 || pos > 16 || pos >= n || block[pos] != ' ') return FastHead::kFallback;
  out.method = block.substr(0, pos);
  size_t tstart = ++pos;
  while (pos < n && block[pos] > 0x20 && block[pos] < 0x7f) ++pos;
  if (pos == tstart || pos >= n || block[pos] != ' ') return FastHead::kFallback;
  out.target = block.substr(tstart, pos - tstart);
  size_t vstart = ++pos;
  size_t eol = block.find("\r\n", vstart);
  if (eol == std::string_view::npos || !Version(block.substr(vstart, eol - vstart), out.version))
    return FastHead::kFallback;
  if (!Fields(block, eol + 2, out.fields, out.count)) return FastHead::kFallback;
  for (size_t i = 0; i < out.count; ++i) {
    std::string_view name = out.fields[i].name;
    if (Lower(name, "content-length") || Lower(name, "transfer-encoding") || Lower(name, "expect"))
      return FastHead::kFallback;
    // Beast refuses a Connection that is not a token list; so must we, by handing it over.
    if ((Lower(name, "connection") || Lower(name, "proxy-connection")) &&
        !TokenList(out.fields[i].value))
      return FastHead::kFallback;
  }
  return FastHead::kOk;
}

FastHead ParseResponseHead(std::string_view block, ResponseHeadView& out) {
  const size_t n = block.size();
  if (n < 14 || !Version(block.substr(0, 8), out.version) || block[8] != ' ')
    return FastHead::kFallback;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (block[i] < '0' || block[i] > '9') return FastHead::kFallback;
    status = status * 10 + (block[i] - '0');
  }
  // RFC 9112 4: the SP after the status code is there even when the reason phrase is empty.
  if (status < 200 || status > 599 || block[12] != ' ') return FastHead::kFallback;
  out.status = status;
  size_t eol = block.find("\r\n", 13);
  if (eol == std::string_view::npos) return FastHead::kFallback;
  for (size_t i = 13; i < eol; ++i)  // the reason phrase
    if (!ValueChar(block[i])) return FastHead::kFallback;
  if (!Fields(block, eol + 2, out.fields, out.count)) return FastHead::kFallback;
  out.has_length = false;
  out.content_length = 0;
  out.request_id = false;
  bool close = false, keep = false;
  for (size_t i = 0; i < out.count; ++i) {
    std::string_view name = out.fields[i].name, v = out.fields[i].value;
    if (Lower(name, "content-length")) {
      if (out.has_length || v.empty() || v.size() > 15) return FastHead::kFallback;
      uint64_t len = 0;
      for (char c : v) {
        if (c < '0' || c > '9') return FastHead::kFallback;
        len = len * 10 + static_cast<uint64_t>(c - '0');
      }
      out.has_length = true;
      out.content_length = len;
    } else if (Lower(name, "transfer-encoding")) {
      return FastHead::kFallback;
    } else if (Lower(name, "connection")) {
      // One token only on the fast path; a list goes to the full parser.
      if (Lower(v, "close")) {
        close = true;
      } else if (Lower(v, "keep-alive")) {
        keep = true;
      } else {
        return FastHead::kFallback;
      }
    } else if (Lower(name, "x-request-id")) {
      out.request_id = true;
    }
  }
  bool bodiless = status == 204 || status == 304;
  if (bodiless && out.has_length && out.content_length != 0) return FastHead::kFallback;
  if (!bodiless && !out.has_length) return FastHead::kFallback;
  out.close = out.version == 11 ? close : !(keep && !close);
  return FastHead::kOk;
}

}  // namespace millions::http
