// The shard map's key in etcd, through etcd's v3 JSON gateway (shard_map_etcd.h).
#include "data/shard_map_etcd.h"

#include <boost/json.hpp>

#include "core/config.h"
#include "core/http_client.h"
#include "core/log.h"

namespace millions::data {
namespace json = boost::json;
namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(std::string_view s) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kB64[(v >> k) & 63];
  }
  if (size_t left = s.size() - i; left > 0) {
    uint32_t v = uint8_t(s[i]) << 16;
    if (left == 2) v |= uint8_t(s[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += left == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool Unbase64(std::string_view s, std::string* out) {
  uint32_t v = 0;
  int bits = 0;
  for (char ch : s) {
    if (ch == '=') break;
    const char* p = std::char_traits<char>::find(kB64, 64, ch);
    if (!p) return false;
    v = (v << 6) | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += static_cast<char>((v >> bits) & 0xff);
    }
  }
  return true;
}

// etcd's gateway writes 64-bit integers as strings.
int64_t Int(const json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return 0;
  if (it->value().is_string()) return std::stoll(std::string(it->value().as_string()));
  if (it->value().is_int64()) return it->value().as_int64();
  return 0;
}

Result<VersionedShardMap> FromRange(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return MakeError(Errc::kUnavailable, "etcd_bad_reply", "etcd's range reply is not JSON");
  const auto& o = v.as_object();
  if (!o.contains("kvs") || !o.at("kvs").is_array() || o.at("kvs").as_array().empty())
    return MakeError(Errc::kNotFound, "not_found", "no shard map in etcd");
  const auto& kv = o.at("kvs").as_array().front();
  if (!kv.is_object() || !kv.as_object().contains("value"))
    return MakeError(Errc::kUnavailable, "etcd_bad_reply", "etcd's key has no value");
  std::string text;
  if (!Unbase64(kv.at("value").as_string(), &text))
    return MakeError(Errc::kInternal, "bad_shard_map", "the shard map is not base64");
  auto map = ShardMapFromJson(text);
  if (!map.ok()) return MakeError(Errc::kInternal, "bad_shard_map", map.error().message);
  return VersionedShardMap{std::move(*map), Int(kv.as_object(), "mod_revision")};
}

}  // namespace

std::string EtcdBase64(std::string_view s) { return Base64(s); }
bool EtcdUnbase64(std::string_view s, std::string* out) { return Unbase64(s, out); }

std::string ShardMapKey(std::string_view deployment) {
  return "/millions/" + std::string(deployment) + "/shardmap";
}

EtcdShardMapClient::EtcdShardMapClient(EtcdOptions options) : opt_(std::move(options)) {}

Status EtcdShardMapClient::Authenticate() {
  token_.clear();
  if (opt_.user.empty()) return Ok();
  std::string body =
      json::serialize(json::object{{"name", opt_.user}, {"password", opt_.password}});
  bool ignored = false;
  auto r = PostOnce("auth/authenticate", body, &ignored);
  if (!r.ok()) return r.error();
  boost::system::error_code ec;
  auto v = json::parse(*r, ec);
  if (ec || !v.is_object() || !v.as_object().contains("token"))
    return MakeError(Errc::kUnavailable, "etcd_auth", "etcd refused the shardmap user");
  token_ = std::string(v.at("token").as_string());
  return Ok();
}

Result<std::string> EtcdShardMapClient::PostOnce(const std::string& path, const std::string& body,
                                                 bool* auth_failed) {
  Error last = MakeError(Errc::kUnavailable, "etcd_unavailable", "no etcd member answered");
  for (size_t i = 0; i < opt_.endpoints.size(); ++i) {
    size_t at = (next_ + i) % opt_.endpoints.size();
    auto hp = config::ParseHostPort(opt_.endpoints[at]);
    http::FetchRequest r;
    r.method = "POST";
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/v3/" + path;
    r.body = body;
    r.content_type = "application/json";
    r.timeout = opt_.timeout;
    if (!token_.empty()) r.authorization = token_;
    auto res = http::Fetch(r);
    if (!res.ok()) {
      last = res.error();
      continue;
    }
    next_ = at;
    if (res->status == 200) return std::move(res->body);
    // An expired or missing token (etcd's simple tokens lapse): log in again and repeat.
    if (res->body.find("auth") != std::string::npos ||
        res->body.find("user name") != std::string::npos) {
      *auth_failed = true;
      return MakeError(Errc::kUnauthenticated, "etcd_auth", res->body.substr(0, 200));
    }
    last = MakeError(
        Errc::kUnavailable, "etcd_error",
        "etcd " + path + ": " + std::to_string(res->status) + " " + res->body.substr(0, 200));
  }
  return last;
}

Result<std::string> EtcdShardMapClient::Post(const std::string& path, const std::string& body) {
  std::lock_guard lock(mu_);
  if (token_.empty() && !opt_.user.empty())
    if (Status st = Authenticate(); !st.ok()) return st.error();
  bool auth_failed = false;
  auto r = PostOnce(path, body, &auth_failed);
  if (r.ok() || !auth_failed || opt_.user.empty()) return r;
  if (Status st = Authenticate(); !st.ok()) return st.error();
  return PostOnce(path, body, &auth_failed);
}

Result<VersionedShardMap> EtcdShardMapClient::Read() {
  auto r = Post("kv/range", json::serialize(json::object{{"key", Base64(opt_.key)}}));
  if (!r.ok()) return r.error();
  return FromRange(*r);
}

Result<VersionedShardMap> EtcdShardMapClient::CreateIfAbsent(const ShardMap& map) {
  const std::string key = Base64(opt_.key);
  json::object txn{
      {"compare",
       json::array{json::object{
           {"key", key}, {"result", "EQUAL"}, {"target", "CREATE"}, {"create_revision", "0"}}}},
      {"success",
       json::array{json::object{
           {"request_put", json::object{{"key", key}, {"value", Base64(ShardMapToJson(map))}}}}}}};
  auto r = Post("kv/txn", json::serialize(txn));
  if (!r.ok()) return r.error();
  return Read();
}

Status EtcdShardMapClient::Publish(const ShardMap& map, int64_t expect_revision,
                                   int64_t* new_revision) {
  const std::string key = Base64(opt_.key);
  json::object txn{
      {"compare", json::array{json::object{{"key", key},
                                           {"result", "EQUAL"},
                                           {"target", "MOD"},
                                           {"mod_revision", std::to_string(expect_revision)}}}},
      {"success",
       json::array{json::object{
           {"request_put", json::object{{"key", key}, {"value", Base64(ShardMapToJson(map))}}}}}}};
  auto r = Post("kv/txn", json::serialize(txn));
  if (!r.ok()) return r.error();
  boost::system::error_code ec;
  auto v = json::parse(*r, ec);
  if (ec || !v.is_object() || !v.as_object().contains("succeeded") ||
      !v.at("succeeded").is_bool() || !v.at("succeeded").as_bool())
    return MakeError(Errc::kConflict, "stale_revision",
                     "the shard map changed since revision " + std::to_string(expect_revision));
  if (new_revision) {  // the transaction's revision is the key's new mod revision
    const auto* header = v.as_object().if_contains("header");
    *new_revision = header && header->is_object() ? Int(header->as_object(), "revision") : 0;
  }
  return Ok();
}

bool SwapIfNewer(std::atomic<std::shared_ptr<const ShardMap>>& current,
                 std::shared_ptr<const ShardMap> next) {
  auto now = current.load();
  while (!now || next->version > now->version) {
    if (current.compare_exchange_weak(now, next)) return true;
  }
  return false;
}

ShardMapWatcher::ShardMapWatcher(std::unique_ptr<EtcdShardMapClient> client,
                                 VersionedShardMap first, std::chrono::milliseconds interval,
                                 std::function<void(const ShardMap&)> on_change)
    : client_(std::move(client)), interval_(interval), on_change_(std::move(on_change)) {
  current_.store(std::make_shared<const ShardMap>(std::move(first.map)));
  thread_ = std::thread([this] { Loop(); });
}

ShardMapWatcher::~ShardMapWatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ShardMapWatcher::Refresh() {
  std::lock_guard lock(refresh_mu_);
  auto r = client_->Read();
  if (!r.ok()) {
    log::Warn("could not read the shard map", {{"error", r.error().message}});
    return;
  }
  auto next = std::make_shared<const ShardMap>(std::move(r->map));
  if (!SwapIfNewer(current_, next)) return;
  swaps_.fetch_add(1);
  log::Info("shard map swapped", {{"version", next->version}});
  if (on_change_) on_change_(*next);
}

void ShardMapWatcher::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, interval_, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    Refresh();
    lock.lock();
  }
}

}  // namespace millions::data
