"""The diffusion section of the tour runs on the bundled model and writes images that carry their provenance."""

from genlab.data.images import read_png_provenance
from genlab.diffusion.cli import tour_section
from genlab.tour import write_tour


def test_tour_diffusion_section(tmp_path):
    index = write_tour(tmp_path, [tour_section], quick=True)
    page = index.read_text()
    assert "Pixel diffusion" in page and "diffusion/trajectory.png" in page
    for sampler in ("ddpm", "ddim", "dpmpp-2m", "euler", "heun"):
        grids = list((tmp_path / "diffusion").glob(f"{sampler}-*.png"))
        assert len(grids) == 1
        info = read_png_provenance(grids[0])
        assert info["sampler"] == sampler and info["seed"] == 0 and info["model"].endswith("emoji32-ddpm")
