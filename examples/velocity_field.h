// The velocity example's grid and input field. The field is a uniform stream plus a rigid rotation
// about the z axis: its Cartesian components are known in closed form, so a conversion from
// spherical components can be checked against the exact answer, not only against itself.
#ifndef EXAMPLES_VELOCITY_FIELD_H_
#define EXAMPLES_VELOCITY_FIELD_H_

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>

namespace examples {

// nlat colatitudes theta in (0, pi), nlon longitudes phi in [0, 2 pi), nr radii r in (0, 1];
// fields are stored [ilat][ilon][ir].
struct SphericalGrid {
  std::int64_t nlat = 0;
  std::int64_t nlon = 0;
  std::int64_t nr = 0;

  std::int64_t points() const { return nlat * nlon * nr; }
  std::size_t index(std::int64_t ilat, std::int64_t ilon, std::int64_t ir) const {
    return static_cast<std::size_t>((ilat * nlon + ilon) * nr + ir);
  }
  double theta(std::int64_t ilat) const { return std::numbers::pi * (ilat + 0.5) / nlat; }
  double phi(std::int64_t ilon) const { return 2 * std::numbers::pi * ilon / nlon; }
  double r(std::int64_t ir) const { return (ir + 1.0) / nr; }
};

// The unit vectors r^, theta^ and phi^ at one (theta, phi), in Cartesian components, so that
// v = v_r r^ + v_theta theta^ + v_phi phi^.
struct SphericalBasis {
  SphericalBasis(double theta, double phi)
      : sin_theta(std::sin(theta)),
        cos_theta(std::cos(theta)),
        sin_phi(std::sin(phi)),
        cos_phi(std::cos(phi)),
        r_hat{sin_theta * cos_phi, sin_theta * sin_phi, cos_theta},
        theta_hat{cos_theta * cos_phi, cos_theta * sin_phi, -sin_theta},
        phi_hat{-sin_phi, cos_phi, 0.0} {}

  double sin_theta, cos_theta, sin_phi, cos_phi;
  std::array<double, 3> r_hat, theta_hat, phi_hat;
};

// The stream: kStream everywhere plus an angular velocity kOmega about z.
inline constexpr std::array<double, 3> kStream = {0.6, -0.3, 0.8};
inline constexpr double kOmega = 2.0;

// (v_r, v_theta, v_phi) of the stream at radius r in the directions of `at`.
inline std::array<double, 3> stream_spherical(const SphericalBasis& at, double r) {
  const auto along = [](const std::array<double, 3>& unit) {
    return kStream[0] * unit[0] + kStream[1] * unit[1] + kStream[2] * unit[2];
  };
  return {along(at.r_hat), along(at.theta_hat), along(at.phi_hat) + kOmega * r * at.sin_theta};
}

// (v_x, v_y, v_z) of the stream at the point (x, y, z): kStream + kOmega z^ x (x, y, z).
inline std::array<double, 3> stream_cartesian(double x, double y) {
  return {kStream[0] - kOmega * y, kStream[1] + kOmega * x, kStream[2]};
}

}  // namespace examples

#endif  // EXAMPLES_VELOCITY_FIELD_H_
