"""Temporal stability of stylized video: flicker reduction and its measure.

A per-frame style network answers small changes in the input with large changes in texture, so
the output flickers. ``FlickerReducer`` blends each stylized frame with the previous stylized
frame warped into the current one by optical flow (Farneback on small grey frames), trusting the
warp only where the warped previous *input* matches the current input (occlusions and cuts fall
back to the fresh frame). ``temporal_error`` is the matching measure: the mean absolute difference
between consecutive output frames after motion compensation, over the pixels the flow explains.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FLOW_WIDTH = 160  # flow is computed at this width and scaled up: cheap, and smooth enough
TRUST_SIGMA = 12.0  # input mismatch (0-255) at which the warp's weight has fallen to 1/e


_CHANNEL_MEAN = np.full((1, 3), 1.0 / 3.0, np.float32)


def _grey(frame: np.ndarray, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def backward_flow(current: np.ndarray, previous: np.ndarray, width: int = FLOW_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Sampling maps (map_x, map_y) at full size: where each pixel of ``current`` was in ``previous``."""
    h, w = current.shape[:2]
    width = min(width, w)
    flow = cv2.calcOpticalFlowFarneback(_grey(current, width), _grey(previous, width), None,
                                        0.5, 3, 15, 3, 5, 1.2, 0)
    flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * (w / width)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def trust(current_in: np.ndarray, warped_prev_in: np.ndarray) -> np.ndarray:
    """Per-pixel weight in [0, 1]: how well the motion explains the current input."""
    diff = cv2.absdiff(current_in, warped_prev_in).astype(np.float32)  # exact for uint8 frames
    err = cv2.transform(diff, _CHANNEL_MEAN)  # mean over channels, one pass (numpy's axis=2 mean is slow)
    return cv2.exp(err * (-1.0 / TRUST_SIGMA))


class FlickerReducer:
    """Stateful over one video: feed (input, stylized) frames in order, get stabilised frames."""

    def __init__(self, weight: float = 0.6) -> None:
        self.weight = weight
        self._prev_in: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None

    def __call__(self, frame_in: np.ndarray, frame_out: np.ndarray) -> np.ndarray:
        if self.weight > 0 and self._prev_out is not None and self._prev_out.shape == frame_out.shape:
            maps = backward_flow(frame_in, self._prev_in)
            alpha = self.weight * trust(frame_in, warp(self._prev_in, maps))
            # alpha * warped previous output + (1 - alpha) * this output, rounded, in one OpenCV pass
            frame_out = cv2.blendLinear(warp(self._prev_out, maps), frame_out, alpha, 1.0 - alpha)
        self._prev_in, self._prev_out = frame_in, frame_out
        return frame_out


def temporal_error(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Mean flow-compensated |out_t - warp(out_t-1)| (0-255) over pixels the input motion explains."""
    total, weight = 0.0, 0.0
    for t in range(1, min(len(inputs), len(outputs))):
        maps = backward_flow(inputs[t], inputs[t - 1])
        w = trust(inputs[t], warp(inputs[t - 1], maps)) > 0.5
        if outputs[t].shape[:2] != inputs[t].shape[:2]:  # upscaled output: compare at input size
            size = (inputs[t].shape[1], inputs[t].shape[0])
            cur, prev = (cv2.resize(o, size, interpolation=cv2.INTER_AREA) for o in (outputs[t], outputs[t - 1]))
        else:
            cur, prev = outputs[t], outputs[t - 1]
        diff = np.abs(cur.astype(np.float32) - warp(prev, maps).astype(np.float32)).mean(axis=2)
        total += float(diff[w].sum())
        weight += float(w.sum())
    return total / weight if weight else 0.0
