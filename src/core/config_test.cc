#include "core/config.h"

#include <gtest/gtest.h>

namespace millions::config {
namespace {

TEST(Config, ReadsKnownKeysAndKeepsDefaults) {
  auto f = ConfigFile::Parse("[web]\nport = 9000\nhost = \"127.0.0.2\"\n", "t.toml");
  auto web = f->Table("web");
  int port = 1;
  std::string host, missing = "dflt";
  web.Get("port", &port, 0, 65535);
  web.Get("host", &host);
  web.Get("nope", &missing);
  f->RejectUnknownKeys();
  EXPECT_EQ(port, 9000);
  EXPECT_EQ(host, "127.0.0.2");
  EXPECT_EQ(missing, "dflt");
}

TEST(Config, UnknownKeyNamesKeyAndLine) {
  auto f = ConfigFile::Parse("[web]\nport = 9000\n\nprot = 1\n", "t.toml");
  int port = 0;
  f->Table("web").Get("port", &port, 0, 65535);
  try {
    f->RejectUnknownKeys();
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.toml:4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("web.prot"), std::string::npos) << e.what();
  }
}

TEST(Config, UnknownTableIsAnError) {
  auto f = ConfigFile::Parse("[web]\nport = 1\n[wbe]\nx = 1\n", "t.toml");
  int port = 0;
  f->Table("web").Get("port", &port, 0, 65535);
  EXPECT_THROW(f->RejectUnknownKeys(), ConfigError);
}

TEST(Config, WrongTypeAndRangeNameTheKey) {
  auto f = ConfigFile::Parse("[web]\nport = \"x\"\nthreads = 500\n", "t.toml");
  int port = 0, threads = 1;
  try {
    f->Table("web").Get("port", &port, 0, 65535);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.toml:2: key 'web.port' must be an integer"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(f->Table("web").Get("threads", &threads, 1, 64), ConfigError);
}

TEST(Config, ChoiceListsTheChoices) {
  auto f = ConfigFile::Parse("[cache]\npolicy = \"random\"\n", "t.toml");
  std::string policy = "lru";
  try {
    f->Table("cache").GetChoice("policy", &policy, {"lru", "lfu", "fifo"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lru, lfu, fifo"), std::string::npos) << e.what();
  }
}

TEST(Config, SyntaxErrorHasLine) {
  try {
    ConfigFile::Parse("[web]\nport = = 3\n", "t.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.toml:2"), std::string::npos) << e.what();
  }
}

TEST(Config, HostPort) {
  auto hp = ParseHostPort("127.0.1.5:8081");
  EXPECT_EQ(hp.host, "127.0.1.5");
  EXPECT_EQ(hp.port, 8081);
  EXPECT_THROW(ParseHostPort("nohost"), ConfigError);
  EXPECT_THROW(ParseHostPort("h:99999"), ConfigError);
}

}  // namespace
}  // namespace millions::config
