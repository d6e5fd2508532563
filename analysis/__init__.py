"""Tables and figures from stored records. The matplotlib backend is chosen here, once for
every module below: figures are files (no display), drawn the same on every machine."""
import matplotlib

matplotlib.use("Agg")
