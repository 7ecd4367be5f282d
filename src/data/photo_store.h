// PhotoStore: the store facet for photos, their edited versions and the media blobs.
// Sharding routes photo calls by owner (the photo id embeds no owner: GetPhoto needs the id's
// shard from the id generator or a lookup); blobs are content-addressed and live anywhere.
// Errors: Result/Status; 404 not_found, 503 when the database is unavailable.
// Thread-safety: every method may be called from any thread; calls block (run them on a
// BlockingPool). Ownership: an implementation owns or shares its connections.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "data/rows.h"

namespace millions::data {

class PhotoStore {
 public:
  virtual ~PhotoStore() = default;

  // Content-addressed: putting the same key twice is a no-op.
  virtual Status PutBlob(std::string_view key, std::string_view content_type,
                         std::string_view bytes) = 0;
  virtual Result<Blob> GetBlob(std::string_view key) = 0;

  // Routed by photo.owner_id.
  virtual Status CreatePhoto(const PhotoRow& photo) = 0;
  virtual Result<PhotoRow> GetPhoto(int64_t id, Consistency c) = 0;
  // Routed by owner_id. Newest first, ids below `before` (0: from the newest).
  virtual Result<std::vector<PhotoRow>> ListPhotos(int64_t owner_id, int64_t before, int limit,
                                                   Consistency c) = 0;
  // The photos of everyone `user_id` follows, newest first, ids below `before`. Joins the
  // follow graph with photos: a sharded store gathers it from every followee's shard.
  virtual Result<std::vector<PhotoRow>> Feed(int64_t user_id, int64_t before, int limit,
                                             Consistency c) = 0;
};

}  // namespace millions::data
