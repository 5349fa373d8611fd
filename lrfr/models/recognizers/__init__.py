from .face_recognizer import FaceRecognizer
from .sr_face_recognizer import CSRI, SRFaceRecognizer
from .super_resolver import SuperResolver

__all__ = ['FaceRecognizer', 'SRFaceRecognizer', 'CSRI', 'SuperResolver']
