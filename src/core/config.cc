#include "core/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace millions::config {

struct ConfigFile::Impl {
  toml::table root;
  std::set<const toml::node*> used;  // nodes some caller asked for
};

ConfigFile::ConfigFile(std::unique_ptr<Impl> impl, std::string name)
    : impl_(std::move(impl)), name_(std::move(name)) {}
ConfigFile::~ConfigFile() = default;

std::unique_ptr<ConfigFile> ConfigFile::Parse(const std::string& text, const std::string& name) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    throw ConfigError(os.str());
  }
  return std::unique_ptr<ConfigFile>(new ConfigFile(std::move(impl), name));
}

std::unique_ptr<ConfigFile> ConfigFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the topology file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

Section ConfigFile::Root() { return Section(this, &impl_->root, ""); }

namespace {

void Walk(const toml::table& t, const std::string& prefix, const std::set<const toml::node*>& used,
          const std::string& file) {
  for (const auto& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (!used.count(&v)) {
      throw ConfigError(file + ":" + std::to_string(k.source().begin.line) + ": unknown key '" +
                        key + "'");
    }
    if (auto* sub = v.as_table()) Walk(*sub, key, used, file);
    if (auto* arr = v.as_array()) {
      for (size_t i = 0; i < arr->size(); ++i)
        if (auto* st = (*arr)[i].as_table())
          Walk(*st, key + "[" + std::to_string(i) + "]", used, file);
    }
  }
}

}  // namespace

void ConfigFile::RejectUnknownKeys() { Walk(impl_->root, "", impl_->used, name_); }

void ConfigFile::RejectUnknownKeysIn(const std::vector<std::string>& paths) {
  auto fail = [&](const toml::key& k, const std::string& key) {
    throw ConfigError(name_ + ":" + std::to_string(k.source().begin.line) + ": unknown key '" +
                      key + "'");
  };
  for (const auto& [k, v] : impl_->root)
    if (!v.is_table() && !v.is_array_of_tables() && !impl_->used.count(&v))
      fail(k, std::string(k.str()));
  for (const auto& path : paths) {
    const toml::table* t = &impl_->root;
    const toml::node* n = nullptr;
    const toml::key* key = nullptr;
    size_t from = 0;
    while (t) {
      size_t dot = path.find('.', from);
      auto it = t->find(path.substr(from, dot == std::string::npos ? dot : dot - from));
      if (it == t->end()) break;
      n = &it->second;
      key = &it->first;
      if (dot == std::string::npos) break;
      from = dot + 1;
      t = n->as_table();
      n = nullptr;
    }
    if (!n) continue;  // absent: nothing to check
    if (!impl_->used.count(n)) fail(*key, path);
    if (auto* sub = n->as_table()) Walk(*sub, path, impl_->used, name_);
    if (auto* arr = n->as_array()) {
      for (size_t i = 0; i < arr->size(); ++i)
        if (auto* st = (*arr)[i].as_table())
          Walk(*st, path + "[" + std::to_string(i) + "]", impl_->used, name_);
    }
  }
}

const void* Section::Lookup(const char* key) {
  if (!node_) return nullptr;
  auto* t = static_cast<const toml::table*>(node_);
  const toml::node* n = t->get(key);
  if (n) file_->impl_->used.insert(n);
  return n;
}

void Section::Fail(const void* node, const std::string& key, const std::string& what) {
  auto* n = static_cast<const toml::node*>(node);
  std::string full = path_.empty() ? key : path_ + "." + key;
  throw ConfigError(file_->name() + ":" + std::to_string(n->source().begin.line) + ": key '" +
                    full + "' " + what);
}

void Section::Get(const char* key, std::string* out) {
  auto* n = static_cast<const toml::node*>(Lookup(key));
  if (!n) return;
  if (!n->is_string()) Fail(n, key, "must be a string");
  *out = n->as_string()->get();
}

void Section::Get(const char* key, int64_t* out, int64_t min, int64_t max) {
  auto* n = static_cast<const toml::node*>(Lookup(key));
  if (!n) return;
  if (!n->is_integer()) Fail(n, key, "must be an integer");
  int64_t v = n->as_integer()->get();
  if (v < min || v > max)
    Fail(n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  *out = v;
}

void Section::Get(const char* key, int* out, int min, int max) {
  int64_t v = *out;
  Get(key, &v, min, max);
  *out = static_cast<int>(v);
}

void Section::Get(const char* key, bool* out) {
  auto* n = static_cast<const toml::node*>(Lookup(key));
  if (!n) return;
  if (!n->is_boolean()) Fail(n, key, "must be true or false");
  *out = n->as_boolean()->get();
}

void Section::Get(const char* key, double* out, double min, double max) {
  auto* n = static_cast<const toml::node*>(Lookup(key));
  if (!n) return;
  double v;
  if (n->is_floating_point()) {
    v = n->as_floating_point()->get();
  } else if (n->is_integer()) {
    v = static_cast<double>(n->as_integer()->get());
  } else {
    Fail(n, key, "must be a number");
  }
  if (v < min || v > max) Fail(n, key, "is out of range");
  *out = v;
}

void Section::Get(const char* key, std::vector<std::string>* out) {
  auto* n = static_cast<const toml::node*>(Lookup(key));
  if (!n) return;
  if (!n->is_array()) Fail(n, key, "must be an array of strings");
  out->clear();
  for (const auto& e : *n->as_array()) {
    if (!e.is_string()) Fail(n, key, "must be an array of strings");
    out->push_back(e.as_string()->get());
  }
}

void Section::GetChoice(const char* key, std::string* out,
                        const std::vector<std::string>& choices) {
  std::string v = *out;
  Get(key, &v);
  for (const auto& c : choices) {
    if (c == v) {
      *out = v;
      return;
    }
  }
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  Fail(Lookup(key), key, "must be one of: " + list + " (got '" + v + "')");
}

Section Section::Sub(const char* key) {
  auto* n = static_cast<const toml::node*>(Lookup(key));
  std::string path = path_.empty() ? key : path_ + "." + key;
  if (!n) return Section(file_, nullptr, path);
  if (!n->is_table()) Fail(n, key, "must be a table");
  return Section(file_, n->as_table(), path);
}

std::vector<Section> Section::SubArray(const char* key) {
  auto* n = static_cast<const toml::node*>(Lookup(key));
  std::vector<Section> out;
  if (!n) return out;
  if (!n->is_array_of_tables())
    Fail(n, key, "must be an array of tables ([[" + std::string(key) + "]])");
  std::string path = path_.empty() ? key : path_ + "." + key;
  size_t i = 0;
  for (const auto& e : *n->as_array()) {
    file_->impl_->used.insert(&e);
    out.push_back(Section(file_, e.as_table(), path + "[" + std::to_string(i++) + "]"));
  }
  return out;
}

HostPort ParseHostPort(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw ConfigError("address '" + text + "' must be host:port");
  HostPort hp;
  hp.host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw ConfigError("address '" + text + "' has a bad port");
  hp.port = std::stoi(port);
  if (hp.port > 65535) throw ConfigError("address '" + text + "' has a bad port");
  return hp;
}

}  // namespace millions::config
