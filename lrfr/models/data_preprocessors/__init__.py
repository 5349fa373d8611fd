from .collate import face_collate
from .face_data_preprocessor import FaceDataPreprocessor

__all__ = ['FaceDataPreprocessor', 'face_collate']
