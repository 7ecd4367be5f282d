#include "roles/web/single.h"

#include <filesystem>

#include "core/config.h"
#include "core/log.h"
#include "roles/web/node.h"
#include "roles/web/settings.h"

namespace millions::web {

int RunSingle(const SingleFlags& flags) {
  WebNodeConfig cfg;
  std::string data_dir = "./data/single";
  std::string path = flags.topology;
  if (path.empty() && std::filesystem::exists("topologies/single.toml"))
    path = "topologies/single.toml";
  auto file =
      path.empty() ? config::ConfigFile::Parse("", "(defaults)") : config::ConfigFile::Load(path);
  auto node = file->Table("node");
  node.Get("name", &cfg.name);
  node.Get("listen", &cfg.listen);
  node.Get("data_dir", &data_dir);
  node.Get("threads", &cfg.threads, 1, 64);
  node.Get("blocking_threads", &cfg.blocking_threads, 1, 256);
  node.GetChoice("log_level", &cfg.log_level, {"debug", "info", "warn", "error"});
  ReadSettings(*file, &cfg);
  file->RejectUnknownKeys();

  auto hp = config::ParseHostPort(cfg.listen);
  if (flags.host) hp.host = *flags.host;
  if (flags.port) hp.port = *flags.port;
  cfg.listen = hp.host + ":" + std::to_string(hp.port);
  if (flags.data_dir) data_dir = *flags.data_dir;

  log::Init(cfg.name, "single", log::ParseLevel(cfg.log_level));
  std::filesystem::create_directories(data_dir);
  auto store = data::OpenSqliteStore(data_dir + "/millions.db", cfg.blocking_threads + 2);
  auto queue = queue::OpenLocalQueue(data_dir + "/queue.db", Env::Default());
  log::Info("data", {{"data_dir", data_dir}});
  return RunWebNode(cfg, *store, *queue);
}

}  // namespace millions::web
