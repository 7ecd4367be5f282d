// The edge's cache keys: CacheKey (method, host, path, normalized query) and VaryKey (the
// request's values of the fields a response's Vary names). Two requests that the origin
// answers alike must get one key (else the hit ratio suffers), and two it may answer
// differently must not (else one client is served another's response): every normalization
// here is one RFC 3986 §6.2.2 or RFC 9111 §4.1 allows.
// Thread-safety: pure functions. Ownership: returns owned strings.
#include <algorithm>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "roles/edge/store.h"

namespace millions::edge {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Characters a query may carry literally (RFC 3986 §3.4: pchar / "/" / "?"), besides the
// unreserved ones and '%'. Others are encoded, which is what a client should have sent.
bool QueryLiteral(unsigned char c) {
  return std::string_view("!$&'()*+,;=:@/?").find(static_cast<char>(c)) != std::string_view::npos;
}

void AppendEscaped(std::string& out, unsigned char c) {
  out += '%';
  out += kHex[c >> 4];
  out += kHex[c & 15];
}

// A query name or value, with its percent-encoding made canonical (see store.h).
std::string NormalizeQueryPart(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if (c == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      unsigned char decoded = HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]);
      if (Unreserved(decoded))
        out += static_cast<char>(decoded);
      else
        AppendEscaped(out, decoded);
      i += 2;
    } else if (Unreserved(c) || QueryLiteral(c) || c == '%') {
      // A '%' without two hex digits stays as sent: the origin decides what it means, and it
      // must not share a key with "%25".
      out += static_cast<char>(c);
    } else {
      AppendEscaped(out, c);
    }
  }
  return out;
}

// Host and path are kept as received, but never with a byte that would break the key's
// space-separated layout.
void AppendSafe(std::string& out, std::string_view s, bool lower) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f) {
      AppendEscaped(out, c);
    } else {
      out += static_cast<char>(lower && c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
  }
}

// The host without a default port: "Example.COM:80" -> "example.com", "[::1]:443" -> "[::1]".
std::string NormalizeHost(std::string_view host) {
  size_t colon = host.rfind(':');
  // A colon inside an IPv6 literal is not a port separator.
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    bool digits =
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      size_t nz = port.find_first_not_of('0');
      std::string_view value = nz == std::string_view::npos ? "0" : port.substr(nz);
      // An empty port is the default port too (RFC 3986 §6.2.3).
      if (port.empty() || value == "80" || value == "443") {
        host = host.substr(0, colon);
      } else {
        std::string out;
        AppendSafe(out, host.substr(0, colon + 1), true);
        out += value;  // ":0080" is ":80"-like noise; keep one spelling
        return out;
      }
    }
  }
  std::string out;
  AppendSafe(out, host, true);
  return out;
}

std::string NormalizeQuery(std::string_view query) {
  // (name, has '=', value): "a" and "a=" may mean different things to the origin.
  std::vector<std::tuple<std::string, bool, std::string>> params;
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view param = query.substr(start, end - start);
    if (!param.empty()) {  // "a=1&&b=2" and "a=1&" carry no empty parameter
      size_t eq = param.find('=');
      if (eq == std::string_view::npos)
        params.emplace_back(NormalizeQueryPart(param), false, "");
      else
        params.emplace_back(NormalizeQueryPart(param.substr(0, eq)), true,
                            NormalizeQueryPart(param.substr(eq + 1)));
    }
    start = end + 1;
  }
  std::sort(params.begin(), params.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<2>(a), std::get<1>(a)) <
           std::tie(std::get<0>(b), std::get<2>(b), std::get<1>(b));
  });
  std::string out;
  for (const auto& [name, has_eq, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    if (has_eq) out += '=' + value;
  }
  return out;
}

bool Ows(char c) { return c == ' ' || c == '\t'; }

// A field value with whitespace at its ends and around its commas removed.
std::string NormalizeFieldValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  size_t i = 0;
  while (i < v.size() && Ows(v[i])) ++i;
  for (; i < v.size(); ++i) {
    char c = v[i];
    if (c == ',') {
      while (!out.empty() && Ows(out.back())) out.pop_back();
      out += ',';
      while (i + 1 < v.size() && Ows(v[i + 1])) ++i;
    } else {
      out += c;
    }
  }
  while (!out.empty() && Ows(out.back())) out.pop_back();
  return out;
}

}  // namespace

std::string CacheKey(std::string_view method, std::string_view host, std::string_view path,
                     std::string_view query) {
  std::string key;
  key.reserve(method.size() + host.size() + path.size() + query.size() + 3);
  AppendSafe(key, method == "HEAD" ? std::string_view("GET") : method, false);
  key += ' ';
  AppendSafe(key, path.empty() ? std::string_view("/") : path, false);
  std::string q = NormalizeQuery(query);
  if (!q.empty()) key += '?' + q;
  key += ' ';
  key += NormalizeHost(host);
  return key;
}

std::string CacheKeyPathPrefix(std::string_view path_prefix) {
  std::string key = "GET ";
  AppendSafe(key, path_prefix, false);
  return key;
}

std::string CacheKeyAnyHost(std::string_view path, std::string_view query) {
  // CacheKey with an empty host ends with the separator that precedes the host.
  return CacheKey("GET", "", path, query);
}

std::string VaryKey(const std::vector<std::string>& vary, const HeaderLookup& request) {
  std::string key;
  for (const std::string& name : vary) {
    for (char c : name) key += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (std::optional<std::string> value = request(name)) {
      key += ':';
      key += NormalizeFieldValue(*value);
    }
    // A field value cannot hold a line feed (RFC 9110 §5.5), so this separates fields.
    key += '\n';
  }
  return key;
}

}  // namespace millions::edge
