"""Face finding maths shared by the station and the camera host: numpy and OpenCV only.

``facefind.mtcnn`` holds MTCNN's runtime-agnostic stage maths (pyramid, non-maximum suppression,
box regression, the R-Net and O-Net stages, thresholds) over any three networks that follow
:class:`facefind.mtcnn.MtcnnNets`; vision/detector.py runs them on OpenVINO or TensorFlow, the
sender's ``--detect`` on OpenCV's dnn module (``facefind.cv_nets``). It imports nothing of the
project and no TensorFlow, OpenVINO or Qt (an import-linter contract), so a camera host can use it.
"""
