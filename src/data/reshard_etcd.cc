#include "data/reshard_etcd.h"

#include <boost/json.hpp>

namespace millions::data {
namespace json = boost::json;
namespace {

Result<json::object> Parse(const Result<std::string>& body) {
  if (!body.ok()) return body.error();
  boost::system::error_code ec;
  auto v = json::parse(*body, ec);
  if (ec || !v.is_object())
    return MakeError(Errc::kUnavailable, "etcd_bad_reply", "etcd's reply is not JSON");
  return v.as_object();
}

// etcd's gateway writes 64-bit integers as strings.
std::string Str(const json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return "";
  if (it->value().is_string()) return std::string(it->value().as_string());
  if (it->value().is_int64()) return std::to_string(it->value().as_int64());
  return "";
}

// The first kv of a range reply: its value and lease, or nullopt.
struct Kv {
  std::string value, lease;
};
std::optional<Kv> FirstKv(const json::object& o) {
  const auto* kvs = o.if_contains("kvs");
  if (!kvs || !kvs->is_array() || kvs->as_array().empty()) return std::nullopt;
  const auto& kv = kvs->as_array().front();
  if (!kv.is_object()) return std::nullopt;
  Kv out;
  if (!EtcdUnbase64(Str(kv.as_object(), "value"), &out.value)) return std::nullopt;
  out.lease = Str(kv.as_object(), "lease");
  return out;
}

std::string HolderJson(const ReshardLockHolder& h) {
  return json::serialize(
      json::object{{"host", h.host}, {"pid", h.pid}, {"started_ms", h.started_ms}});
}

ReshardLockHolder HolderFrom(const Kv& kv) {
  ReshardLockHolder h;
  boost::system::error_code ec;
  auto v = json::parse(kv.value, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (const auto* x = o.if_contains("host"); x && x->is_string())
      h.host = std::string(x->as_string());
    if (const auto* x = o.if_contains("pid"); x && x->is_int64()) h.pid = x->as_int64();
    if (const auto* x = o.if_contains("started_ms"); x && x->is_int64())
      h.started_ms = x->as_int64();
  }
  h.lease = kv.lease.empty() ? 0 : std::stoll(kv.lease);
  return h;
}

}  // namespace

std::string ReshardLockKey(std::string_view deployment) {
  return "/millions/" + std::string(deployment) + "/reshard/lock";
}
std::string ReshardPlanKey(std::string_view deployment) {
  return "/millions/" + std::string(deployment) + "/reshard/plan";
}

ReshardEtcd::ReshardEtcd(EtcdOptions options, std::string deployment)
    : etcd_(std::make_unique<EtcdShardMapClient>(std::move(options))),
      lock_key_(ReshardLockKey(deployment)),
      plan_key_(ReshardPlanKey(deployment)) {}

Status ReshardEtcd::Lock(const ReshardLockHolder& me, int ttl_s, ReshardLockHolder* holder) {
  auto grant = Parse(etcd_->Post("lease/grant", json::serialize(json::object{{"TTL", ttl_s}})));
  if (!grant.ok()) return grant.error();
  const std::string lease = Str(*grant, "ID");
  if (lease.empty()) return MakeError(Errc::kUnavailable, "etcd_lease", "etcd granted no lease");
  const std::string key = EtcdBase64(lock_key_);
  json::object txn{
      {"compare",
       json::array{json::object{
           {"key", key}, {"result", "EQUAL"}, {"target", "CREATE"}, {"create_revision", "0"}}}},
      {"success",
       json::array{json::object{
           {"request_put",
            json::object{{"key", key}, {"value", EtcdBase64(HolderJson(me))}, {"lease", lease}}}}}},
      {"failure", json::array{json::object{{"request_range", json::object{{"key", key}}}}}}};
  auto r = Parse(etcd_->Post("kv/txn", json::serialize(txn)));
  if (!r.ok()) return r.error();
  const auto* ok = r->if_contains("succeeded");
  if (ok && ok->is_bool() && ok->as_bool()) {
    lease_ = lease;
    return Ok();
  }
  (void)etcd_->Post("lease/revoke", json::serialize(json::object{{"ID", lease}}));
  if (holder) {
    *holder = ReshardLockHolder{};
    const auto* resp = r->if_contains("responses");
    if (resp && resp->is_array() && !resp->as_array().empty()) {
      const auto& first = resp->as_array().front();
      if (first.is_object())
        if (const auto* rr = first.as_object().if_contains("response_range"); rr && rr->is_object())
          if (auto kv = FirstKv(rr->as_object())) *holder = HolderFrom(*kv);
    }
  }
  return MakeError(Errc::kConflict, "reshard_running", "another reshard holds " + lock_key_);
}

Status ReshardEtcd::KeepAlive() {
  if (lease_.empty()) return MakeError(Errc::kConflict, "no_lock", "the reshard lock is not held");
  auto r = Parse(etcd_->Post("lease/keepalive", json::serialize(json::object{{"ID", lease_}})));
  if (!r.ok()) return r.error();
  const auto* result = r->if_contains("result");
  // An expired lease comes back with a TTL of 0 (or none).
  if (!result || !result->is_object() || Str(result->as_object(), "TTL").empty() ||
      Str(result->as_object(), "TTL") == "0")
    return MakeError(Errc::kConflict, "lock_lost", "the reshard lock's lease expired");
  return Ok();
}

Status ReshardEtcd::Unlock() {
  if (lease_.empty()) return Ok();
  auto r = etcd_->Post("lease/revoke", json::serialize(json::object{{"ID", lease_}}));
  if (!r.ok()) return r.error();
  lease_.clear();
  return Ok();
}

Status ReshardEtcd::Break(const ReshardLockHolder& holder) {
  auto r = etcd_->Post("lease/revoke",
                       json::serialize(json::object{{"ID", std::to_string(holder.lease)}}));
  if (!r.ok()) return r.error();
  return Ok();
}

Result<std::optional<ReshardLockHolder>> ReshardEtcd::Holder() {
  auto r =
      Parse(etcd_->Post("kv/range", json::serialize(json::object{{"key", EtcdBase64(lock_key_)}})));
  if (!r.ok()) return r.error();
  auto kv = FirstKv(*r);
  if (!kv) return std::optional<ReshardLockHolder>();
  return std::optional<ReshardLockHolder>(HolderFrom(*kv));
}

Result<std::optional<ReshardPlan>> ReshardEtcd::ReadPlan() {
  auto r =
      Parse(etcd_->Post("kv/range", json::serialize(json::object{{"key", EtcdBase64(plan_key_)}})));
  if (!r.ok()) return r.error();
  auto kv = FirstKv(*r);
  if (!kv) return std::optional<ReshardPlan>();
  auto plan = ReshardPlanFromJson(kv->value);
  if (!plan.ok()) return plan.error();
  return std::optional<ReshardPlan>(std::move(*plan));
}

Status ReshardEtcd::WritePlan(const ReshardPlan& plan) {
  json::object put{{"key", EtcdBase64(plan_key_)}, {"value", EtcdBase64(ReshardPlanToJson(plan))}};
  auto r = etcd_->Post("kv/put", json::serialize(put));
  if (!r.ok()) return r.error();
  return Ok();
}

}  // namespace millions::data
