// Asio's TLS support, compiled once (BOOST_ASIO_SEPARATE_COMPILATION). Apart from
// asio_beast.cc so that the fuzz targets, which have no TLS, need no OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
