// Helpers for the object store's tests: objects, requests, and a field-by-field comparison.
// Thread-safety: values only. Ownership: returns owned values.
#pragma once

#include <gtest/gtest.h>
#include <strings.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "roles/edge/store.h"

namespace millions::edge::testing {

inline HeaderLookup Headers(std::map<std::string, std::string> h = {}) {
  return [h = std::move(h)](std::string_view name) -> std::optional<std::string> {
    for (const auto& [k, v] : h)
      if (strcasecmp(k.c_str(), std::string(name).c_str()) == 0) return v;
    return std::nullopt;
  };
}

struct ObjSpec {
  std::string key;
  std::string body;
  std::vector<std::string> vary;     // the response's Vary
  HeaderLookup request = Headers();  // the request that stored it (for vary_key)
  std::vector<std::string> tags;
};

inline std::shared_ptr<Object> MakeObject(const ObjSpec& s) {
  auto o = std::make_shared<Object>();
  o->key = s.key;
  o->vary_key = VaryKey(s.vary, s.request);
  o->status = 200;
  o->headers = "Content-Type: text/plain\r\n";
  o->body = std::make_shared<const std::string>(s.body);
  o->meta.info.vary = s.vary;
  o->meta.info.cc.max_age = 60;
  o->tags = s.tags;
  return o;
}

inline ObjectPtr Obj(std::string key, std::string body, std::vector<std::string> tags = {}) {
  return MakeObject({std::move(key), std::move(body), {}, Headers(), std::move(tags)});
}

inline std::string BodyOf(const ObjectPtr& o) { return o && o->body ? *o->body : "<none>"; }

// Every field Object has, including each of Stored's, ResponseInfo's and CacheControl's.
inline void ExpectSameObject(const Object& a, const Object& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.vary_key, b.vary_key);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.headers, b.headers);
  ASSERT_TRUE(a.body && b.body);
  EXPECT_EQ(*a.body, *b.body);
  EXPECT_EQ(a.tags, b.tags);
  EXPECT_EQ(a.meta.request_time, b.meta.request_time);
  EXPECT_EQ(a.meta.response_time, b.meta.response_time);
  EXPECT_EQ(a.meta.lifetime, b.meta.lifetime);
  const ResponseInfo &r = a.meta.info, &s = b.meta.info;
  EXPECT_EQ(r.status, s.status);
  EXPECT_EQ(r.date, s.date);
  EXPECT_EQ(r.expires, s.expires);
  EXPECT_EQ(r.expires_present, s.expires_present);
  EXPECT_EQ(r.age, s.age);
  EXPECT_EQ(r.last_modified, s.last_modified);
  EXPECT_EQ(r.etag, s.etag);
  EXPECT_EQ(r.vary, s.vary);
  EXPECT_EQ(r.pragma_no_cache, s.pragma_no_cache);
  const CacheControl &c = r.cc, &d = s.cc;
  EXPECT_EQ(c.max_age, d.max_age);
  EXPECT_EQ(c.s_maxage, d.s_maxage);
  EXPECT_EQ(c.min_fresh, d.min_fresh);
  EXPECT_EQ(c.max_stale, d.max_stale);
  EXPECT_EQ(c.max_stale_any, d.max_stale_any);
  EXPECT_EQ(c.stale_while_revalidate, d.stale_while_revalidate);
  EXPECT_EQ(c.stale_if_error, d.stale_if_error);
  EXPECT_EQ(c.no_store, d.no_store);
  EXPECT_EQ(c.no_cache, d.no_cache);
  EXPECT_EQ(c.private_, d.private_);
  EXPECT_EQ(c.public_, d.public_);
  EXPECT_EQ(c.must_revalidate, d.must_revalidate);
  EXPECT_EQ(c.proxy_revalidate, d.proxy_revalidate);
  EXPECT_EQ(c.immutable, d.immutable);
  EXPECT_EQ(c.only_if_cached, d.only_if_cached);
  EXPECT_EQ(c.no_transform, d.no_transform);
  EXPECT_EQ(c.must_understand, d.must_understand);
}

}  // namespace millions::edge::testing
