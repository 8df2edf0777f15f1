/* gemm_ceiling.c — the sgemm calls of one rlscale training step (batch 64 x context 64,
 * forward and backward of every linear layer and of attention per batch row and head, the
 * output head), timed alone against the system OpenBLAS: an upper bound on rlscale's
 * training tokens/s at a ladder shape. With `decode VOCAB` instead: the sgemm calls of one
 * KV-cache generation (64 rows, 64 positions; per position every linear layer and the head
 * on a 64-row batch), an upper bound on rlscale's sampling tokens/s (its attention over the
 * cache is not a matrix product and is left out). Best of 20 (10 for decode). Not part of
 * the package; see the README's Benchmark.
 *   gcc -O2 analysis/gemm_ceiling.c -o /tmp/gemm_ceiling -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas
 *   OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX /tmp/gemm_ceiling 64 2 2     (d_model layers heads)
 *   OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX /tmp/gemm_ceiling 256 4 4 decode 48
 */
#include <string.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float*A(size_t n){float*p=aligned_alloc(64,((n*4+63)/64)*64);for(size_t i=0;i<n;i++)p[i]=(rand()%100)*0.01f;return p;}
#define NN(M,N,K,a,lda,b,ldb,c,ldc) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,N,K,1,a,lda,b,ldb,0,c,ldc)
#define NT(M,N,K,a,lda,b,ldb,c,ldc) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,a,lda,b,ldb,0,c,ldc)
#define TN(M,N,K,a,lda,b,ldb,c,ldc) cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,M,N,K,1,a,lda,b,ldb,1,c,ldc)
#define NTB(M,N,K,a,lda,b,ldb,c,ldc) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,a,lda,b,ldb,1,c,ldc)
static int decode(int d,int L,int V){int B=64,T=64;
 float*x=A(B*4*d),*y=A(B*4*d),*h=A(B*4*d);float**w=malloc(L*sizeof(float*)*4);for(int i=0;i<4*L;i++)w[i]=A(4*d*d);float*wte=A(V*d);
 double best=1e9;for(int rep=0;rep<10;rep++){double t0=now();
 for(int t=0;t<T;t++){for(int l=0;l<L;l++){NTB(B,3*d,d,x,d,w[4*l],d,y,3*d);NTB(B,d,d,y,d,w[4*l+1],d,x,d);NTB(B,4*d,d,x,d,w[4*l+2],d,h,4*d);NTB(B,d,4*d,h,4*d,w[4*l+3],4*d,x,d);}
  NTB(B,V,d,x,d,wte,d,y,V);}
 double tt=now()-t0;if(tt<best)best=tt;}
 printf("decode d%d L%d: sgemm-only generation %.2f ms -> %.0f tok/s\n",d,L,best*1e3,B*T/best);return 0;}
int main(int argc,char**argv){int d=atoi(argv[1]),L=atoi(argv[2]),H=atoi(argv[3]);int B=64,T=64,V=23,BT=B*T,hd=d/H;
 if(argc>5&&!strcmp(argv[4],"decode"))return decode(d,L,atoi(argv[5]));
 float*x=A(BT*4*d),*y=A(BT*4*d),*w=A(4*d*d),*dw=A(4*d*d),*qkv=A(BT*3*d),*s=A(64*64),*o=A(BT*d),*hd2=A(BT*V),*wh=A(V*d);
 int causal=argc>4;
 double best=1e9;for(int rep=0;rep<20;rep++){double t0=now();
 for(int l=0;l<L;l++){ // forward
  NT(BT,3*d,d,x,d,w,d,qkv,3*d);
  for(int b=0;b<B;b++)for(int h=0;h<H;h++){float*q=qkv+b*T*3*d+h*hd;
    if(causal){for(int r=0;r<T;r+=16){int rows=16,keys=r+16;NT(rows,keys,hd,q+r*3*d,3*d,q+d,3*d,s,64);NN(rows,hd,keys,s,64,q+2*d,3*d,o+b*T*d+h*hd+r*d,d);}}
    else{NT(T,T,hd,q,3*d,q+d,3*d,s,64);NN(T,hd,T,s,64,q+2*d,3*d,o+b*T*d+h*hd,d);}}
  NT(BT,d,d,o,d,w,d,y,d); NT(BT,4*d,d,x,d,w,d,y,4*d); NT(BT,d,4*d,y,4*d,w,4*d,x,d);}
 NT(BT,V,d,x,d,wh,d,hd2,V);
 // backward: each linear: dX = dY W (NN), dW += dY^T X (TN)
 NN(BT,d,V,hd2,V,wh,d,x,d); TN(V,d,BT,hd2,V,x,d,wh,d);
 for(int l=0;l<L;l++){
  NN(BT,4*d,d,x,d,w,4*d,y,4*d); TN(d,4*d,BT,x,d,y,4*d,dw,4*d);
  NN(BT,d,4*d,y,4*d,w,d,x,d); TN(4*d,d,BT,y,4*d,x,d,dw,d);
  NN(BT,d,d,x,d,w,d,o,d); TN(d,d,BT,x,d,o,d,dw,d);
  for(int b=0;b<B;b++)for(int h=0;h<H;h++){float*q=qkv+b*T*3*d+h*hd;float*dO=o+b*T*d+h*hd;
    NT(T,T,hd,dO,d,q+2*d,3*d,s,64); // dP
    TN(T,hd,T,s,64,dO,d,q+2*d,3*d); // dV (accum)
    NN(T,hd,T,s,64,q+d,3*d,q,3*d); // dQ
    TN(T,hd,T,s,64,q,3*d,q+d,3*d);} // dK
  NN(BT,d,3*d,qkv,3*d,w,d,x,d); TN(3*d,d,BT,qkv,3*d,x,d,dw,d);}
 double t=now()-t0;if(t<best)best=t;}
 printf("d%d L%d H%d: gemm-only step %.2f ms -> %.0f tok/s\n",d,L,H,best*1e3,BT/best);}
