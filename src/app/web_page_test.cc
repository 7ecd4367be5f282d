// The page and media URLs with and without a CDN edge (docs/edge.md): with one, the page loads
// its stylesheet and script through web/loader.js from the edge (each falling back to this
// origin), its content policy names the edge, and media URLs are on the edge's origin.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "app/requests.h"
#include "app/service_test_util.h"
#include "app/web.h"

namespace millions::app {
namespace {
using testing::ServiceHarness;

http::Response Get(WebApp& app, const std::string& path) {
  boost::asio::io_context io;
  http::Request req;
  req.method = "GET";
  req.target = req.path = path;
  auto f = boost::asio::co_spawn(io, app.Handle(req), boost::asio::use_future);
  io.run();
  return f.get();
}

std::string Body(const http::Response& r) {
  return std::string(r.static_body.empty() ? std::string_view(r.body) : r.static_body);
}

TEST(WebPage, WithoutAnEdgeTheAssetsAndMediaAreHere) {
  ServiceHarness h;
  BlockingPool pool(1);
  WebApp app(*h.service, pool, h.metrics, WebOptions{});
  auto r = Get(app, "/");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(Body(r).find("<script src=\"/assets/app."), std::string::npos) << Body(r);
  EXPECT_EQ(Body(r).find("loader"), std::string::npos);
  EXPECT_EQ(std::string(*r.header("Content-Security-Policy")).find("http://"), std::string::npos);
  EXPECT_EQ(MediaUrl("abc.png"), "/media/abc.png");
}

TEST(WebPage, WithAnEdgeThePageLoadsFromItAndFallsBack) {
  ServiceHarness h;
  BlockingPool pool(1);
  WebOptions o;
  o.edge_origin = "http://127.0.0.1:8090";
  WebApp app(*h.service, pool, h.metrics, o);
  auto r = Get(app, "/");
  ASSERT_EQ(r.status, 200);
  std::string page = Body(r);
  EXPECT_NE(page.find("<script src=\"/assets/loader."), std::string::npos) << page;
  EXPECT_NE(page.find("data-edge=\"http://127.0.0.1:8090\""), std::string::npos) << page;
  EXPECT_NE(page.find("data-js=\"/assets/app."), std::string::npos) << page;
  EXPECT_EQ(page.find("{{"), std::string::npos) << "every placeholder filled";
  std::string csp(*r.header("Content-Security-Policy"));
  for (const char* d : {"img-src", "style-src", "script-src"}) {
    auto at = csp.find(d);
    ASSERT_NE(at, std::string::npos) << csp;
    EXPECT_NE(csp.substr(at, csp.find(';', at) - at).find("http://127.0.0.1:8090"),
              std::string::npos)
        << d << " in " << csp;
  }
  EXPECT_EQ(csp.find("connect-src 'self';"), csp.find("connect-src")) << "the API stays here";
  // The loader itself is served here.
  auto at = page.find("/assets/loader.");
  auto end = page.find('"', at);
  EXPECT_EQ(Get(app, page.substr(at, end - at)).status, 200);
  SetMediaOrigin("http://127.0.0.1:8090");
  EXPECT_EQ(MediaUrl("abc.png"), "http://127.0.0.1:8090/media/abc.png");
  SetMediaOrigin("");
}

TEST(WebPage, AnEdgeWithTlsIsNamedForHttpsPages) {
  ServiceHarness h;
  BlockingPool pool(1);
  WebOptions o;
  o.edge_origin = "http://127.0.0.1:8090";
  o.edge_tls_origin = "https://127.0.0.1:8453";
  WebApp app(*h.service, pool, h.metrics, o);
  auto r = Get(app, "/");
  ASSERT_EQ(r.status, 200);
  std::string page = Body(r);
  EXPECT_NE(page.find("data-edge-tls=\"https://127.0.0.1:8453\""), std::string::npos) << page;
  std::string csp(*r.header("Content-Security-Policy"));
  for (const char* d : {"img-src", "style-src", "script-src"}) {
    auto at = csp.find(d);
    ASSERT_NE(at, std::string::npos) << csp;
    std::string dir = csp.substr(at, csp.find(';', at) - at);
    EXPECT_NE(dir.find("http://127.0.0.1:8090"), std::string::npos) << dir;
    EXPECT_NE(dir.find("https://127.0.0.1:8453"), std::string::npos) << dir;
  }
}

}  // namespace
}  // namespace millions::app
