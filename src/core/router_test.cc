#include "core/router.h"

#include <gtest/gtest.h>

namespace millions::http {
namespace {

boost::asio::awaitable<Response> Noop(Request&) { co_return Response{}; }

TEST(Router, MatchesTemplatesAndCapturesParams) {
  Router r;
  r.Add("GET", "/api/users/by-handle/{handle}", Noop);
  r.Add("GET", "/api/users/{id}", Noop);
  r.Add("GET", "/api/users/{id}/photos", Noop);
  r.Add("POST", "/api/users/{id}/follow", Noop);
  r.Add("GET", "/media/{key...}", Noop);

  auto m = r.Find("GET", "/api/users/42");
  ASSERT_EQ(m.outcome, Router::Outcome::kMatched);
  EXPECT_EQ(m.route, "/api/users/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].second, "42");

  m = r.Find("GET", "/api/users/by-handle/alice");
  EXPECT_EQ(m.route, "/api/users/by-handle/{handle}");
  EXPECT_EQ(m.params[0].second, "alice");

  m = r.Find("GET", "/api/users/7/photos");
  EXPECT_EQ(m.route, "/api/users/{id}/photos");

  m = r.Find("GET", "/media/ab/cd.png");
  ASSERT_EQ(m.outcome, Router::Outcome::kMatched);
  EXPECT_EQ(m.params[0].second, "ab/cd.png");
}

TEST(Router, DistinguishesNotFoundFromMethodNotAllowed) {
  Router r;
  r.Add("POST", "/api/users/{id}/follow", Noop);
  EXPECT_EQ(r.Find("GET", "/api/users/1/follow").outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(r.Find("POST", "/api/users/1/unfollow").outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(r.Find("POST", "/api/users//follow").outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(r.Find("POST", "/api/users/1/follow/x").outcome, Router::Outcome::kNotFound);
}

TEST(Router, HeadUsesGetRoutes) {
  Router r;
  r.Add("GET", "/livez", Noop);
  EXPECT_EQ(r.Find("HEAD", "/livez").outcome, Router::Outcome::kMatched);
}

}  // namespace
}  // namespace millions::http
