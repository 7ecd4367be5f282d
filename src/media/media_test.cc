#include "media/media.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <vips/vips8>

namespace millions::media {
namespace {

using vips::VImage;
using K = EditOp::Kind;
using namespace std::string_view_literals;

constexpr std::pair<const char*, const char*> kFormats[] = {
    {".jpg", "image/jpeg"}, {".png", "image/png"}, {".webp", "image/webp"}};

// Saturated colours (so colour-space mistakes show): x in red, y in green, 255 - x in blue.
VImage Gradient(int w, int h) {
  VImage xyz = VImage::xyz(w, h);
  VImage x = xyz[0] * (255.0 / w), y = xyz[1] * (255.0 / h);
  VImage img = x.bandjoin(y).bandjoin(255 - x).cast(VIPS_FORMAT_UCHAR);
  return img.copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
}

VImage WithAlpha(const VImage& img, int alpha) {
  return img.bandjoin_const({static_cast<double>(alpha)});
}

std::string Save(const VImage& img, const char* suffix) {
  void* buf = nullptr;
  size_t len = 0;
  img.write_to_buffer(suffix, &buf, &len);
  std::string out(static_cast<const char*>(buf), len);
  g_free(buf);
  return out;
}

VImage Decode(const std::string& bytes) {
  // Copied, so the image cannot outlive its bytes.
  return VImage::new_from_buffer(bytes.data(), bytes.size(), "").copy_memory();
}

// A PNG whose header claims side x side 1-bit pixels, all zero: ~50 KB (deflate's ratio
// tops out near 1000:1) that decode to 400 million pixels. make_bomb.py writes the same file.
std::string Bomb(uint32_t side) {
  std::string raw;
  std::string row(1 + (side + 7) / 8, '\0');
  for (uint32_t y = 0; y < side; ++y) raw += row;
  uLongf n = compressBound(raw.size());
  std::string z(n, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
            raw.size(), 9);
  z.resize(n);
  auto be32 = [](uint32_t v) {
    std::string s;
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 255);
    return s;
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    std::string body = type + data;
    return be32(data.size()) + body +
           be32(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size()));
  };
  std::string ihdr = be32(side) + be32(side) + std::string("\x01\x00\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) +
         chunk("IEND", "");
}

bool MapsHave(const std::string& name) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(name) != std::string::npos) return true;
  return false;
}

// Declared first, so it runs before any test starts libvips: probing an upload never loads the
// module (the header is read without libvips: sniff.h), an edit does (this binary links libvips
// itself to make its images, so it is the module's mapping that tells).
TEST(MediaModule, LoadedByTheFirstEditOnly) {
  ASSERT_FALSE(Loaded());
  ASSERT_FALSE(MapsHave("millions-media-vips.so"));
  Limits limits;
  std::string png = Bomb(16);
  EXPECT_EQ(Probe(png, "image/gif", limits).error().code, "unsupported_media_type");
  EXPECT_EQ(Probe(png, "image/jpeg", limits).error().code, "bad_image");  // the magic bytes
  auto info = Probe(png, "image/png", limits);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->width, 16);
  EXPECT_EQ(ApplyOps(png, *info, {}, limits).error().code, "bad_edit");
  EXPECT_FALSE(Loaded()) << "probed and refused without libvips";
  EXPECT_FALSE(MapsHave("millions-media-vips.so"));
  auto out = ApplyOps(png, *info, {{.kind = K::kGrayscale}}, limits);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_TRUE(Loaded());
  EXPECT_TRUE(MapsHave("millions-media-vips.so"));
}

class MediaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Init(); }

  // Applies ops and checks the output is a valid image of the same type.
  Encoded Run(const std::string& bytes, const char* type, std::vector<EditOp> ops) {
    auto info = Probe(bytes, type, limits_);
    EXPECT_TRUE(info.ok()) << info.error().message;
    if (!info.ok()) return {};
    auto out = ApplyOps(bytes, *info, ops, limits_);
    EXPECT_TRUE(out.ok()) << type << ": " << out.error().message;
    if (!out.ok()) return {};
    auto again = Probe(out->bytes, type, limits_);
    EXPECT_TRUE(again.ok()) << type;
    if (again.ok()) {
      EXPECT_EQ(again->width, out->info.width);
      EXPECT_EQ(again->height, out->info.height);
    }
    return std::move(out).value();
  }

  Limits limits_;
};

TEST_F(MediaTest, ProbeAcceptsEachFormat) {
  for (auto [suffix, type] : kFormats) {
    auto info = Probe(Save(Gradient(64, 48), suffix), type, limits_);
    ASSERT_TRUE(info.ok()) << type << ": " << info.error().message;
    EXPECT_EQ(info->width, 64);
    EXPECT_EQ(info->height, 48);
    EXPECT_EQ(info->content_type, type);
  }
}

// The header read without libvips (sniff.h) says what libvips says, for every format, with and
// without alpha, 8 and 16 bits, each EXIF orientation, odd sizes.
TEST_F(MediaTest, SniffedHeaderAgreesWithLibvips) {
  int checked = 0;
  for (auto [suffix, type] : kFormats) {
    for (auto [w, h] : {std::pair{1, 1}, {64, 48}, {333, 17}, {17, 333}}) {
      for (int orientation = 1; orientation <= 8; ++orientation) {
        for (bool alpha : {false, true}) {
          for (bool deep : {false, true}) {
            if (deep && std::string_view(suffix) != ".png") continue;
            VImage img = Gradient(w, h);
            if (alpha) img = WithAlpha(img, 200);
            if (deep)
              img = (img.cast(VIPS_FORMAT_USHORT) * 256)
                        .cast(VIPS_FORMAT_USHORT)
                        .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16));
            img = img.copy();
            img.set(VIPS_META_ORIENTATION, orientation);
            std::string bytes = Save(img, suffix);
            VImage loaded = VImage::new_from_buffer(bytes.data(), bytes.size(), "");
            int o = loaded.get_typeof(VIPS_META_ORIENTATION) ? loaded.get_int(VIPS_META_ORIENTATION)
                                                             : 1;
            int vw = o >= 5 ? loaded.height() : loaded.width();
            int vh = o >= 5 ? loaded.width() : loaded.height();
            auto info = Probe(bytes, type, limits_);
            ASSERT_TRUE(info.ok()) << type << " " << w << "x" << h << " o" << orientation << ": "
                                   << info.error().message;
            EXPECT_EQ(std::pair(info->width, info->height), std::pair(vw, vh))
                << type << " " << w << "x" << h << " orientation " << orientation << " alpha "
                << alpha << " deep " << deep;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 200);
}

TEST_F(MediaTest, ProbeRejectsLiesAndJunk) {
  auto code = [&](std::string_view bytes, std::string_view type) {
    auto r = Probe(bytes, type, limits_);
    return r.ok() ? std::string("ok") : r.error().code;
  };
  std::string png = Save(Gradient(8, 8), ".png");
  EXPECT_EQ(code("hello, I am text, not a picture", "image/png"), "bad_image");
  EXPECT_EQ(code(png, "image/jpeg"), "bad_image");
  EXPECT_EQ(code(png, "image/webp"), "bad_image");
  EXPECT_EQ(code("", "image/png"), "bad_image");
  EXPECT_EQ(code("RIFF\x10\0\0\0WAVEfmt "sv, "image/webp"), "bad_image");
  EXPECT_EQ(code(png.substr(0, 20), "image/png"), "bad_image");  // magic right, header cut off
  auto gif = Probe("GIF89a\x01\0\x01\0"sv, "image/gif", limits_);
  ASSERT_FALSE(gif.ok());
  EXPECT_EQ(gif.error().status(), 415);
  EXPECT_EQ(gif.error().code, "unsupported_media_type");
  EXPECT_EQ(code(png, "image/PNG"), "unsupported_media_type");
}

TEST_F(MediaTest, ProbeEnforcesTheLimits) {
  std::string png = Save(Gradient(64, 48), ".png");
  EXPECT_TRUE(Probe(png, "image/png", {.max_pixels = 64 * 48, .max_dimension = 64}).ok());
  for (Limits l : {Limits{.max_pixels = 64 * 48 - 1}, Limits{.max_dimension = 63}}) {
    auto r = Probe(png, "image/png", l);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status(), 413);
    EXPECT_EQ(r.error().code, "image_too_large");
  }
}

TEST_F(MediaTest, DecompressionBombIsRefusedFromTheHeader) {
  std::string bomb = Bomb(20000);
  ASSERT_LT(bomb.size(), 200u * 1024);
  auto t0 = std::chrono::steady_clock::now();
  auto r = Probe(bomb, "image/png", limits_);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "image_too_large");
  EXPECT_LT(took, std::chrono::milliseconds(500));
  // Limits are high enough for the side, not for the pixel count (400 million).
  Limits wide{.max_pixels = 40'000'000, .max_dimension = 65535};
  EXPECT_EQ(Probe(bomb, "image/png", wide).error().code, "image_too_large");
  // ApplyOps checks again rather than trusting the info it is given.
  auto out = ApplyOps(bomb, {20000, 20000, "image/png"}, {{.kind = K::kGrayscale}}, wide);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, "image_too_large");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
}

TEST_F(MediaTest, OpsChangeDimensionsAsExpected) {
  struct Case {
    std::vector<EditOp> ops;
    int w, h;
  } cases[] = {
      {{{K::kCrop, 10, 10, 20, 20}}, 20, 20},
      {{{.kind = K::kRotate, .degrees = 90}}, 48, 64},
      {{{.kind = K::kRotate, .degrees = 180}}, 64, 48},
      {{{.kind = K::kRotate, .degrees = 270}}, 48, 64},
      {{{.kind = K::kResize, .width = 32, .height = 24}}, 32, 24},
      {{{.kind = K::kResize, .width = 100, .height = 7}}, 100, 7},
      {{{.kind = K::kResize, .width = 1, .height = 1}}, 1, 1},
      {{{.kind = K::kBlur, .sigma = 2}, {.kind = K::kSharpen, .sigma = 1}}, 64, 48},
      {{{.kind = K::kRotate, .degrees = 90}, {K::kCrop, 0, 50, 48, 14}}, 48, 14},
  };
  for (auto [suffix, type] : kFormats) {
    std::string bytes = Save(Gradient(64, 48), suffix);
    for (const auto& c : cases) {
      Encoded out = Run(bytes, type, c.ops);
      EXPECT_EQ(out.info.width, c.w) << type;
      EXPECT_EQ(out.info.height, c.h) << type;
      EXPECT_EQ(out.info.content_type, type);
    }
  }
}

TEST_F(MediaTest, OpsKeepTheColours) {
  // A 180-degree turn twice, a blur or a sharpen leaves the average colour where it was; a
  // saturating cast or a channel mix-up would not.
  VImage src = Gradient(64, 48);
  VImage src16 = (src.cast(VIPS_FORMAT_USHORT) * 257)
                     .cast(VIPS_FORMAT_USHORT)
                     .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16));
  for (const VImage& img : {src, src16}) {
    std::string png = Save(img, ".png");
    std::vector<std::vector<EditOp>> all = {
        {{.kind = K::kRotate, .degrees = 180}, {.kind = K::kRotate, .degrees = 180}},
        {{.kind = K::kBlur, .sigma = 1}},
        {{.kind = K::kSharpen, .sigma = 1}},
        {{.kind = K::kResize, .width = 32, .height = 24}},
    };
    for (const auto& ops : all) {
      VImage out = Decode(Run(png, "image/png", ops).bytes);
      EXPECT_EQ(out.format(), img.format()) << "a 16-bit PNG stays 16-bit";
      EXPECT_EQ(out.bands(), 3);
      for (int b = 0; b < 3; ++b)
        EXPECT_NEAR(out[b].avg(), img[b].avg(), img[b].avg() * 0.03 + 1) << b;
    }
  }
}

TEST_F(MediaTest, GrayscaleHasOneBandOrTwoWithAlpha) {
  for (auto [suffix, type] : kFormats) {
    VImage out = Decode(Run(Save(Gradient(40, 30), suffix), type, {{.kind = K::kGrayscale}}).bytes);
    // WebP stores colour only: a grey image comes back as three equal bands.
    if (std::string_view(type) == "image/webp") {
      EXPECT_EQ(out.bands(), 3);
      EXPECT_NEAR((out[0] - out[2]).abs().avg(), 0, 1);
    } else {
      EXPECT_EQ(out.bands(), 1) << type;
    }
  }
  std::string rgba = Save(WithAlpha(Gradient(40, 30), 128), ".png");
  VImage out = Decode(Run(rgba, "image/png", {{.kind = K::kGrayscale}}).bytes);
  EXPECT_EQ(out.bands(), 2);
  EXPECT_EQ(out[1].avg(), 128);
}

TEST_F(MediaTest, AlphaSurvivesEveryOp) {
  for (const char* suffix : {".png", ".webp"}) {
    const char* type = std::string_view(suffix) == ".png" ? "image/png" : "image/webp";
    std::string rgba = Save(WithAlpha(Gradient(64, 48), 200), suffix);
    Encoded e = Run(rgba, type,
                    {{K::kCrop, 2, 2, 60, 44},
                     {.kind = K::kResize, .width = 30, .height = 20},
                     {.kind = K::kBlur, .sigma = 1.5},
                     {.kind = K::kSharpen, .sigma = 1},
                     {.kind = K::kRotate, .degrees = 90}});
    VImage out = Decode(e.bytes);
    ASSERT_EQ(out.bands(), 4) << type;
    EXPECT_NEAR(out[3].avg(), 200, 1) << type;
    EXPECT_NEAR(out[0].avg(), Gradient(64, 48)[0].avg(), 8) << type;
    EXPECT_EQ(out.width(), 20);
  }
  // 16-bit RGBA: premultiplying must use 65535 as full alpha, not 255.
  VImage rgba16 = (WithAlpha(Gradient(64, 48), 200).cast(VIPS_FORMAT_USHORT) * 257)
                      .cast(VIPS_FORMAT_USHORT)
                      .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16));
  VImage out = Decode(
      Run(Save(rgba16, ".png"), "image/png",
          {{.kind = K::kResize, .width = 30, .height = 20}, {.kind = K::kBlur, .sigma = 1.5}})
          .bytes);
  ASSERT_EQ(out.bands(), 4);
  EXPECT_EQ(out.format(), VIPS_FORMAT_USHORT);
  EXPECT_NEAR(out[3].avg(), 200 * 257, 257);
  EXPECT_NEAR(out[0].avg(), rgba16[0].avg(), 8 * 257);
}

TEST_F(MediaTest, ExifOrientationIsAppliedAndMetadataStripped) {
  VImage img = Gradient(64, 48).copy();
  img.set(VIPS_META_ORIENTATION, 6);  // stored sideways: shown 48 wide, 64 high
  img.set("exif-ifd0-Artist", "someone");
  std::string jpeg = Save(img, ".jpg");
  auto info = Probe(jpeg, "image/jpeg", limits_);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->width, 48);
  EXPECT_EQ(info->height, 64);
  Encoded e = Run(jpeg, "image/jpeg", {{K::kCrop, 0, 0, 48, 10}});
  EXPECT_EQ(e.info.width, 48);
  EXPECT_EQ(e.info.height, 10);
  VImage out = Decode(e.bytes);
  EXPECT_EQ(out.get_typeof(VIPS_META_EXIF_NAME), 0u) << "EXIF stripped";
  EXPECT_EQ(out.get_typeof(VIPS_META_ORIENTATION), 0u);
}

TEST_F(MediaTest, MetadataIsStrippedInEveryFormat) {
  VImage img = Gradient(64, 48).copy();
  img.set("exif-ifd0-Artist", "someone");
  std::string xmp = "<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret</x:xmpmeta>";
  img.set(VIPS_META_XMP_NAME, nullptr, xmp.data(), xmp.size());
  img = img.icc_transform("srgb", VImage::option()->set("input_profile", "srgb"));  // attaches one
  int checked = 0;  // metadata the inputs really carried, so the test cannot pass vacuously
  for (auto [suffix, type] : kFormats) {
    std::string bytes = Save(img, suffix);
    VImage in = Decode(bytes);
    ASSERT_NE(in.get_typeof(VIPS_META_ICC_NAME), 0u) << type;
    std::string out = Run(bytes, type, {{.kind = K::kSharpen, .sigma = 1}}).bytes;
    VImage decoded = Decode(out);
    for (const char* field : {VIPS_META_XMP_NAME, VIPS_META_ICC_NAME, VIPS_META_EXIF_NAME}) {
      // libvips 8.14's webpsave always writes a small EXIF block of its own (resolution, size,
      // orientation 1), whatever strip says; it carries nothing from the upload.
      bool webp_exif =
          field == std::string_view(VIPS_META_EXIF_NAME) && std::string_view(type) == "image/webp";
      if (in.get_typeof(field) == 0 || webp_exif) continue;
      ++checked;
      EXPECT_EQ(decoded.get_typeof(field), 0u) << type << " " << field;
    }
    for (const char* secret : {"someone", "secret"}) {
      if (bytes.find(secret) == std::string::npos) continue;
      ++checked;
      EXPECT_EQ(out.find(secret), std::string::npos) << type << " " << secret;
    }
  }
  EXPECT_GE(checked, 8);
}

TEST_F(MediaTest, EmbeddedProfilesAreBakedIntoSrgb) {
  VImage srgb = Gradient(64, 48);
  // Same colours, stored as Display P3 numbers with the P3 profile attached.
  VImage p3 = srgb.icc_transform("p3", VImage::option()->set("input_profile", "srgb"));
  // Unconverted, P3 numbers read as sRGB are about 11 levels off on average.
  ASSERT_GT((p3 - srgb).abs().avg(), 8) << "the test needs P3 numbers that differ from sRGB";
  const std::vector<EditOp> blur = {{.kind = K::kBlur, .sigma = 0.5}};
  for (auto [suffix, type] : {kFormats[1], kFormats[2]}) {
    VImage out = Decode(Run(Save(p3, suffix), type, blur).bytes);
    VImage want = Decode(Run(Save(srgb, suffix), type, blur).bytes);
    EXPECT_EQ(out.get_typeof(VIPS_META_ICC_NAME), 0u) << type;
    EXPECT_LT((out - want).abs().avg(), 5) << type;  // lossy WebP differs by ~4 anyway
  }
  // CMYK JPEGs, with and without a profile, come out as sRGB (or grey).
  VImage cmyk = srgb.icc_transform("cmyk", VImage::option()->set("input_profile", "srgb"));
  ASSERT_EQ(cmyk.interpretation(), VIPS_INTERPRETATION_CMYK);
  VImage bare = cmyk.copy();
  bare.remove(VIPS_META_ICC_NAME);
  for (const VImage& c : {cmyk, bare}) {
    std::string jpeg = Save(c, ".jpg");
    EXPECT_EQ(Decode(Run(jpeg, "image/jpeg", {{.kind = K::kSharpen, .sigma = 1}}).bytes).bands(),
              3);
    EXPECT_EQ(Decode(Run(jpeg, "image/jpeg", {{.kind = K::kGrayscale}}).bytes).bands(), 1);
  }
}

TEST_F(MediaTest, CorruptDataFailsCleanly) {
  const std::vector<EditOp> ops = {{.kind = K::kGrayscale}};
  for (auto [suffix, type] : kFormats) {
    std::string bytes = Save(Gradient(64, 48), suffix);
    std::string cut = bytes.substr(0, bytes.size() / 2);  // header intact, pixels cut off
    auto info = Probe(cut, type, limits_);
    if (!info.ok()) {
      EXPECT_EQ(info.error().code, "bad_image") << type;
      continue;
    }
    auto out = ApplyOps(cut, *info, ops, limits_);
    ASSERT_FALSE(out.ok()) << type;
    EXPECT_EQ(out.error().code, "bad_image") << type;
    // Flipped bytes: any answer will do, so long as it is an answer.
    for (size_t i = 16; i < bytes.size(); i += 7) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(~flipped[i]);
      if (auto fi = Probe(flipped, type, limits_); fi.ok())
        (void)ApplyOps(flipped, *fi, {{.kind = K::kRotate, .degrees = 90}}, limits_);
    }
  }
}

TEST_F(MediaTest, ApplyOpsRefusesInfoThatDoesNotMatch) {
  std::string png = Save(Gradient(64, 48), ".png");
  auto out = ApplyOps(png, {60, 48, "image/png"}, {{.kind = K::kGrayscale}}, limits_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, "media_mismatch");
  out = ApplyOps(png, {64, 48, "image/jpeg"}, {{.kind = K::kGrayscale}}, limits_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, "bad_image");
  out = ApplyOps(png, {64, 48, "image/png"}, {{K::kCrop, 60, 0, 10, 10}}, limits_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, "bad_edit");
}

TEST_F(MediaTest, ManyThreadsAtOnce) {
  std::vector<std::string> inputs;
  for (auto [suffix, type] : kFormats) inputs.push_back(Save(Gradient(64, 48), suffix));
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        int f = (t + i) % 3;
        auto info = Probe(inputs[f], kFormats[f].second, limits_);
        auto out = info.ok() ? ApplyOps(inputs[f], *info,
                                        {{.kind = K::kRotate, .degrees = 90},
                                         {.kind = K::kResize, .width = 24, .height = 32},
                                         {.kind = K::kBlur, .sigma = 1}},
                                        limits_)
                             : Result<Encoded>(info.error());
        if (!out.ok() || out->info.width != 24) ++failures[t];
      }
    });
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace millions::media
