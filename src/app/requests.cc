#include "app/requests.h"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>

#include "core/env.h"

namespace millions::app {
namespace json = boost::json;

namespace {

Error Bad(std::string code, std::string message) {
  return MakeError(Errc::kBadInput, std::move(code), std::move(message));
}

// Parses a JSON object with bounded depth; nothing but an object is accepted.
Result<json::object> ParseObject(std::string_view body) {
  if (body.size() > kMaxJsonBody)
    return MakeError(Errc::kTooLarge, "payload_too_large", "JSON body too large");
  json::parse_options opt;
  opt.max_depth = 8;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, {}, opt);
  if (ec) return Bad("malformed_json", "request body is not valid JSON: " + ec.message());
  if (!v.is_object()) return Bad("malformed_json", "request body must be a JSON object");
  return std::move(v.as_object());
}

// Checks that every key is one of `allowed`.
Status OnlyKeys(const json::object& o, std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : o) {
    bool ok = false;
    for (auto a : allowed) ok = ok || kv.key() == a;
    if (!ok) return Bad("unknown_field", "unknown field '" + std::string(kv.key()) + "'");
  }
  return Ok();
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A string field with a length range in characters; nullopt when absent.
Result<std::optional<std::string>> StringField(const json::object& o, std::string_view key,
                                               size_t min, size_t max, bool required) {
  auto it = o.find(key);
  if (it == o.end()) {
    if (required) return Bad("missing_field", "field '" + std::string(key) + "' is required");
    return std::optional<std::string>();
  }
  if (!it->value().is_string())
    return Bad("bad_field", "field '" + std::string(key) + "' must be a string");
  std::string s(it->value().as_string());
  size_t len = Utf8Length(s);
  if (len < min || len > max)
    return Bad("bad_field", "field '" + std::string(key) + "' must be " + std::to_string(min) +
                                ".." + std::to_string(max) + " characters");
  for (unsigned char c : s)
    if (c < 0x20 && c != '\n' && c != '\t')
      return Bad("bad_field", "field '" + std::string(key) + "' has control characters");
  return std::optional<std::string>(std::move(s));
}

Result<int> IntField(const json::object& o, std::string_view key, int min, int max) {
  auto it = o.find(key);
  if (it == o.end()) return Bad("bad_edit", "op needs field '" + std::string(key) + "'");
  // Boost.JSON keeps integers above INT64_MAX as uint64: out of range here (converting them
  // would throw, which the fuzzer found).
  if (it->value().is_uint64())
    return Bad("bad_edit", "field '" + std::string(key) + "' is out of range");
  if (!it->value().is_int64())
    return Bad("bad_edit", "field '" + std::string(key) + "' must be an integer");
  int64_t v = it->value().as_int64();
  if (v < min || v > max)
    return Bad("bad_edit", "field '" + std::string(key) + "' is out of range");
  return static_cast<int>(v);
}

Result<double> NumberField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return Bad("bad_edit", "op needs field '" + std::string(key) + "'");
  if (!it->value().is_number())
    return Bad("bad_edit", "field '" + std::string(key) + "' must be a number");
  double v = it->value().to_number<double>();
  // 1e999 parses as infinity, which could not be stored and read back (found by the fuzzer).
  if (!std::isfinite(v)) return Bad("bad_edit", "field '" + std::string(key) + "' is out of range");
  return v;
}

Result<media::EditOp> ParseOp(const json::value& v) {
  using K = media::EditOp::Kind;
  if (!v.is_object()) return Bad("bad_edit", "each op must be an object");
  const auto& o = v.as_object();
  auto name = o.find("op");
  if (name == o.end() || !name->value().is_string())
    return Bad("bad_edit", "each op needs a string field 'op'");
  std::string_view op = name->value().as_string();
  media::EditOp e{};
  constexpr int kMax = 100000;
  if (op == "crop") {
    if (Status s = OnlyKeys(o, {"op", "x", "y", "width", "height"}); !s.ok()) return s.error();
    e.kind = K::kCrop;
    auto x = IntField(o, "x", 0, kMax), y = IntField(o, "y", 0, kMax);
    auto w = IntField(o, "width", 1, kMax), h = IntField(o, "height", 1, kMax);
    for (auto* r : {&x, &y, &w, &h})
      if (!r->ok()) return r->error();
    e.x = *x, e.y = *y, e.width = *w, e.height = *h;
  } else if (op == "resize") {
    if (Status s = OnlyKeys(o, {"op", "width", "height"}); !s.ok()) return s.error();
    e.kind = K::kResize;
    auto w = IntField(o, "width", 1, kMax), h = IntField(o, "height", 1, kMax);
    if (!w.ok()) return w.error();
    if (!h.ok()) return h.error();
    e.width = *w, e.height = *h;
  } else if (op == "sharpen" || op == "blur") {
    if (Status s = OnlyKeys(o, {"op", "sigma"}); !s.ok()) return s.error();
    e.kind = op == "blur" ? K::kBlur : K::kSharpen;
    auto sigma = NumberField(o, "sigma");
    if (!sigma.ok()) return sigma.error();
    e.sigma = *sigma;
  } else if (op == "rotate") {
    if (Status s = OnlyKeys(o, {"op", "degrees"}); !s.ok()) return s.error();
    e.kind = K::kRotate;
    auto d = IntField(o, "degrees", 0, 360);
    if (!d.ok()) return d.error();
    e.degrees = *d;
  } else if (op == "grayscale") {
    if (Status s = OnlyKeys(o, {"op"}); !s.ok()) return s.error();
    e.kind = K::kGrayscale;
  } else {
    return Bad("bad_edit", "unknown op '" + std::string(op) + "'");
  }
  return e;
}

Result<std::vector<media::EditOp>> ParseOpsArray(const json::value& v) {
  if (!v.is_array()) return Bad("bad_edit", "'ops' must be an array");
  const auto& arr = v.as_array();
  if (arr.empty() || arr.size() > 10) return Bad("bad_edit", "'ops' must have 1..10 ops");
  std::vector<media::EditOp> ops;
  for (const auto& e : arr) {
    auto op = ParseOp(e);
    if (!op.ok()) return op.error();
    ops.push_back(*op);
  }
  return ops;
}

json::value OpToJson(const media::EditOp& e) {
  using K = media::EditOp::Kind;
  json::object o;
  switch (e.kind) {
    case K::kCrop:
      o = {{"op", "crop"}, {"x", e.x}, {"y", e.y}, {"width", e.width}, {"height", e.height}};
      break;
    case K::kResize:
      o = {{"op", "resize"}, {"width", e.width}, {"height", e.height}};
      break;
    case K::kSharpen:
      o = {{"op", "sharpen"}, {"sigma", e.sigma}};
      break;
    case K::kBlur:
      o = {{"op", "blur"}, {"sigma", e.sigma}};
      break;
    case K::kRotate:
      o = {{"op", "rotate"}, {"degrees", e.degrees}};
      break;
    case K::kGrayscale:
      o = {{"op", "grayscale"}};
      break;
  }
  return o;
}

std::string IdString(int64_t id) { return std::to_string(id); }

json::object PhotoObject(const data::PhotoRow& p) {
  json::array versions;
  for (const auto& v : p.versions)
    versions.push_back({{"url", MediaUrl(v.media_key)},
                        {"width", v.width},
                        {"height", v.height},
                        {"job_id", IdString(v.job_id)}});
  return {{"id", IdString(p.id)},
          {"owner_id", IdString(p.owner_id)},
          {"caption", p.caption},
          {"url", MediaUrl(p.media_key)},
          {"width", p.width},
          {"height", p.height},
          {"content_type", p.content_type},
          {"versions", std::move(versions)},
          {"created_at", FormatRfc3339(p.created_ms)}};
}

}  // namespace

const char* OpName(media::EditOp::Kind kind) {
  using K = media::EditOp::Kind;
  switch (kind) {
    case K::kCrop:
      return "crop";
    case K::kResize:
      return "resize";
    case K::kSharpen:
      return "sharpen";
    case K::kBlur:
      return "blur";
    case K::kRotate:
      return "rotate";
    case K::kGrayscale:
      break;
  }
  return "grayscale";
}

bool ValidHandle(std::string_view h) {
  if (h.size() < 3 || h.size() > 30) return false;
  for (char c : h)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

Result<SignUp> ParseSignUp(std::string_view body) {
  auto o = ParseObject(body);
  if (!o.ok()) return o.error();
  if (Status s = OnlyKeys(*o, {"handle", "password", "display_name"}); !s.ok()) return s.error();
  auto handle = StringField(*o, "handle", 3, 30, true);
  if (!handle.ok()) return handle.error();
  if (!ValidHandle(**handle)) return Bad("bad_field", "handle must match ^[a-z0-9_]{3,30}$");
  auto password = StringField(*o, "password", 8, 128, true);
  if (!password.ok()) return password.error();
  auto display = StringField(*o, "display_name", 1, 64, false);
  if (!display.ok()) return display.error();
  return SignUp{**handle, **password, *display};
}

Result<LogIn> ParseLogIn(std::string_view body) {
  auto o = ParseObject(body);
  if (!o.ok()) return o.error();
  if (Status s = OnlyKeys(*o, {"handle", "password"}); !s.ok()) return s.error();
  auto handle = StringField(*o, "handle", 1, 64, true);
  if (!handle.ok()) return handle.error();
  auto password = StringField(*o, "password", 1, 128, true);
  if (!password.ok()) return password.error();
  return LogIn{**handle, **password};
}

Result<ProfilePatch> ParseProfilePatch(std::string_view body) {
  auto o = ParseObject(body);
  if (!o.ok()) return o.error();
  if (Status s = OnlyKeys(*o, {"display_name", "bio"}); !s.ok()) return s.error();
  auto display = StringField(*o, "display_name", 1, 64, false);
  if (!display.ok()) return display.error();
  auto bio = StringField(*o, "bio", 0, 500, false);
  if (!bio.ok()) return bio.error();
  return ProfilePatch{*display, *bio};
}

Result<std::vector<media::EditOp>> ParseEditOps(std::string_view body, std::string* canonical) {
  auto o = ParseObject(body);
  if (!o.ok()) return o.error();
  if (Status s = OnlyKeys(*o, {"ops"}); !s.ok()) return s.error();
  auto it = o->find("ops");
  if (it == o->end()) return Bad("missing_field", "field 'ops' is required");
  auto ops = ParseOpsArray(it->value());
  if (!ops.ok()) return ops.error();
  json::array arr;
  for (const auto& e : *ops) arr.push_back(OpToJson(e));
  *canonical = json::serialize(arr);
  return ops;
}

Result<std::vector<media::EditOp>> ParseStoredOps(std::string_view ops_json) {
  boost::system::error_code ec;
  json::value v = json::parse(ops_json, ec);
  if (ec) return Bad("bad_edit", "stored ops are not JSON");
  return ParseOpsArray(v);
}

namespace {
std::string& MediaOrigin() {
  static std::string origin;
  return origin;
}
}  // namespace

std::string MediaUrl(const std::string& key) { return MediaOrigin() + "/media/" + key; }
void SetMediaOrigin(std::string origin) { MediaOrigin() = std::move(origin); }

std::string RenderUser(const data::UserRow& u) {
  json::object o{{"id", IdString(u.id)},
                 {"handle", u.handle},
                 {"display_name", u.display_name},
                 {"bio", u.bio},
                 {"followers", u.followers},
                 {"following", u.following},
                 {"photos", u.photos},
                 {"created_at", FormatRfc3339(u.created_ms)}};
  return json::serialize(o);
}

std::string RenderPhoto(const data::PhotoRow& p) { return json::serialize(PhotoObject(p)); }

std::string RenderPhotoPage(const std::vector<data::PhotoRow>& items, int limit) {
  json::array arr;
  for (const auto& p : items) arr.push_back(PhotoObject(p));
  json::value next = nullptr;
  if (static_cast<int>(items.size()) == limit && !items.empty()) next = IdString(items.back().id);
  json::object o{{"items", std::move(arr)}, {"next", next}};
  return json::serialize(o);
}

std::string RenderIdList(const std::vector<int64_t>& ids) {
  json::array arr;
  arr.reserve(ids.size());
  for (int64_t id : ids) arr.push_back(json::value(IdString(id)));
  return json::serialize(json::object{{"items", std::move(arr)}});
}

std::vector<int64_t> ParseIdList(std::string_view text) {
  std::vector<int64_t> out;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return out;
  const json::value* items = v.as_object().if_contains("items");
  if (!items || !items->is_array()) return out;
  for (const auto& e : items->as_array()) {
    if (!e.is_string()) continue;
    int64_t id = 0;
    const auto& s = e.as_string();
    if (std::from_chars(s.data(), s.data() + s.size(), id).ec == std::errc{}) out.push_back(id);
  }
  return out;
}

std::string RenderJob(const data::JobRow& j) {
  boost::system::error_code ec;
  json::value ops = json::parse(j.ops_json, ec);
  if (ec) ops = json::array();
  json::object o{{"id", IdString(j.id)},
                 {"photo_id", IdString(j.photo_id)},
                 {"status", j.status},
                 {"ops", std::move(ops)},
                 {"created_at", FormatRfc3339(j.created_ms)}};
  if (!j.result_key.empty()) o["result_url"] = MediaUrl(j.result_key);
  if (!j.error.empty()) o["error"] = j.error;
  if (j.finished_ms > 0) o["finished_at"] = FormatRfc3339(j.finished_ms);
  return json::serialize(o);
}

std::string RenderSession(int64_t user_id, const std::string& token, int64_t expires_ms) {
  json::object o{
      {"user_id", IdString(user_id)}, {"token", token}, {"expires_at", FormatRfc3339(expires_ms)}};
  return json::serialize(o);
}

}  // namespace millions::app
