// The course's velocity conversion: a velocity field given in spherical components (v_r, v_theta,
// v_phi) on an nlat x nlon x nr grid, converted to Cartesian components (v_x, v_y, v_z), one task
// per latitude, every array in shared memory that all workers read and write:
//
//   velocity --ncores 2
//   running with 2 processes: 500 x 800 x 300 grid (120000000 points), split over latitudes
//   Time in seconds: ...
//   max difference from a serial computation = 0.0
//   max error against the exact field = 8.881784197001252e-16
//
// Only the conversion is timed; filling the inputs and the checks are not. On the process backend
// each worker also maps every page it touches for the first time, which threads never pay again
// after the fill; that cost is in the time, as it would be in Python with shared_memory.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "examples/example.h"
#include "examples/velocity_field.h"
#include "pool/pool.h"

namespace po = boost::program_options;
using examples::SphericalBasis;
using examples::SphericalGrid;

namespace {

// A sum of a few products of O(1) numbers: any two correct evaluations agree far closer.
constexpr double kTolerance = 1e-12;

struct Cartesian {
  double x, y, z;
};

// The course's formulas:
//   v_x = v_r sin(theta) cos(phi) + v_theta cos(theta) cos(phi) - v_phi sin(phi)
//   v_y = v_r sin(theta) sin(phi) + v_theta cos(theta) sin(phi) + v_phi cos(phi)
//   v_z = v_r cos(theta)          - v_theta sin(theta)
inline Cartesian to_cartesian(const SphericalBasis& e, double v_r, double v_theta, double v_phi) {
  return {v_r * e.r_hat[0] + v_theta * e.theta_hat[0] + v_phi * e.phi_hat[0],
          v_r * e.r_hat[1] + v_theta * e.theta_hat[1] + v_phi * e.phi_hat[1],
          v_r * e.r_hat[2] + v_theta * e.theta_hat[2]};
}

std::int64_t scaled(std::int64_t side, double scale) {
  return std::max<std::int64_t>(1, std::llround(static_cast<double>(side) * scale));
}

}  // namespace

int main(int argc, char** argv) {
  examples::Example example("velocity",
                            "Usage: velocity [--nlat N] [--nlon N] [--nr N] [--scale S] "
                            "[common options]\n"
                            "Spherical to Cartesian velocity components on a grid, split over "
                            "latitudes");
  example.options().add_options()("nlat", po::value<std::string>()->default_value("500"),
                                  "colatitudes theta in (0, pi)")(
      "nlon", po::value<std::string>()->default_value("800"), "longitudes phi in [0, 2 pi)")(
      "nr", po::value<std::string>()->default_value("300"), "radii r in (0, 1]")(
      "scale", po::value<std::string>()->default_value("1.0"),
      "multiplies each side (0.5 halves it, an eighth of the points)");
  example.needs_shared_memory();
  example.parse(argc, argv);
  const double scale = example.positive_number("scale");
  const SphericalGrid grid{scaled(example.whole_number("nlat", 1), scale),
                           scaled(example.whole_number("nlon", 1), scale),
                           scaled(example.whole_number("nr", 1), scale)};

  return example.run([&](auto& workers) {
    const auto points = static_cast<std::size_t>(grid.points());
    example.out() << example.running_on() << ": " << grid.nlat << " x " << grid.nlon << " x "
                  << grid.nr << " grid (" << points << " points), split over latitudes"
                  << std::endl;
    pool::SharedArray<double> v_r(points), v_theta(points), v_phi(points);
    pool::SharedArray<double> v_x(points), v_y(points), v_z(points);
    const auto latitudes = pool::range(std::int64_t{0}, grid.nlat);

    // The inputs, and a first write to every output page: memory is only allocated when first
    // touched, and the timed conversion should measure arithmetic, not page faults.
    workers.map(
        [grid, r = v_r.span(), t = v_theta.span(), p = v_phi.span(), x = v_x.span(), y = v_y.span(),
         z = v_z.span()](std::int64_t ilat) {
          double* pr = r.data();
          double* pt = t.data();
          double* pp = p.data();
          double* px = x.data();
          double* py = y.data();
          double* pz = z.data();
          for (std::int64_t ilon = 0; ilon < grid.nlon; ++ilon) {
            const SphericalBasis e(grid.theta(ilat), grid.phi(ilon));
            for (std::int64_t ir = 0; ir < grid.nr; ++ir) {
              const auto v = examples::stream_spherical(e, grid.r(ir));
              const std::size_t i = grid.index(ilat, ilon, ir);
              pr[i] = v[0];
              pt[i] = v[1];
              pp[i] = v[2];
              px[i] = py[i] = pz[i] = 0.0;
            }
          }
          return 0;
        },
        latitudes);

    example.start_clock();
    workers.map(
        [grid, r = v_r.span(), t = v_theta.span(), p = v_phi.span(), x = v_x.span(), y = v_y.span(),
         z = v_z.span()](std::int64_t ilat) {
          const double* pr = r.data();
          const double* pt = t.data();
          const double* pp = p.data();
          double* px = x.data();
          double* py = y.data();
          double* pz = z.data();
          for (std::int64_t ilon = 0; ilon < grid.nlon; ++ilon) {
            // sin and cos once per (latitude, longitude), not per point.
            const SphericalBasis e(grid.theta(ilat), grid.phi(ilon));
            const std::size_t first = grid.index(ilat, ilon, 0);
            for (std::size_t i = first; i < first + static_cast<std::size_t>(grid.nr); ++i) {
              const Cartesian v = to_cartesian(e, pr[i], pt[i], pp[i]);
              px[i] = v.x;
              py[i] = v.y;
              pz[i] = v.z;
            }
          }
          return 0;
        },
        latitudes);
    example.stop_clock();

    // The check, point by point in this process: no second set of full-size arrays.
    double max_difference = 0, max_error = 0;
    double sum_x = 0, sum_y = 0, sum_z = 0;
    for (std::int64_t ilat = 0; ilat < grid.nlat; ++ilat) {
      for (std::int64_t ilon = 0; ilon < grid.nlon; ++ilon) {
        const SphericalBasis e(grid.theta(ilat), grid.phi(ilon));
        for (std::int64_t ir = 0; ir < grid.nr; ++ir) {
          const std::size_t i = grid.index(ilat, ilon, ir);
          const Cartesian serial = to_cartesian(e, v_r[i], v_theta[i], v_phi[i]);
          max_difference = std::max({max_difference, std::abs(v_x[i] - serial.x),
                                     std::abs(v_y[i] - serial.y), std::abs(v_z[i] - serial.z)});
          const double radius = grid.r(ir);
          const auto exact = examples::stream_cartesian(radius * e.r_hat[0], radius * e.r_hat[1]);
          max_error = std::max({max_error, std::abs(v_x[i] - exact[0]), std::abs(v_y[i] - exact[1]),
                                std::abs(v_z[i] - exact[2])});
          sum_x += v_x[i];
          sum_y += v_y[i];
          sum_z += v_z[i];
        }
      }
    }

    examples::Outcome outcome(grid.points(), max_difference);
    outcome.lines = {
        "max difference from a serial computation = " + examples::python_repr(max_difference),
        "max error against the exact field = " + examples::python_repr(max_error)};
    outcome.fields = {{"nlat", grid.nlat},      {"nlon", grid.nlon}, {"nr", grid.nr},
                      {"max_error", max_error}, {"sum_vx", sum_x},   {"sum_vy", sum_y},
                      {"sum_vz", sum_z}};
    if (max_difference > kTolerance || max_error > kTolerance) {
      outcome.failure = "the conversion differs from the serial one or from the exact field";
    }
    return outcome;
  });
}
